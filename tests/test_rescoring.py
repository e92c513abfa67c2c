"""Attention rescoring at every exit of an early-exit AED: the decoder's batched teacher-forced
scores, the rescored choice, and the search options."""

import argparse

import pytest
import torch
from test_architectures import AED, VOCAB, build
from test_model import batch

from conftest import decode_online
from ee_asr.api.options import add_exit_args, add_model_args, engine_from_args
from ee_asr.common.errors import UserError
from ee_asr.decode.attention_rescoring import AttentionRescoring
from ee_asr.exits.ctc_greedy import greedy_ids
from ee_asr.exits.ctc_nbest import CtcNbest


@pytest.fixture(scope="module")
def aed():
    model = build(AED).eval()
    torch.manual_seed(1)
    x, xl, _, _ = batch(b=3, t=60)
    xl = torch.tensor([60, 44, 30])  # padded: every utterance's memory must be masked to its own length
    outs, olens = model.exit_hidden(x, xl)
    return model, x, xl, outs, olens


def hyps(rescoring, model, k, hidden, olens, rows=None):
    """The search's hypotheses at exit k for `rows` (default all), as the exit engine asks for them."""
    from types import SimpleNamespace

    logp = model.head(k).log_softmax(hidden).detach().numpy()
    backend = SimpleNamespace(hidden=lambda state: (hidden, olens), exit_layers=model.encoder.exit_layers)
    view = SimpleNamespace(backend=backend, state=None, exit_index=k, log_probs=logp, lengths=olens.numpy())
    return rescoring.hypotheses(view, list(range(len(olens))) if rows is None else rows)


def stepwise(model, exit_index, hidden, hyp):
    """log p(hyp + <eos>) one decoder step at a time, the utterance alone (no padding)."""
    dec, total, prefix = model.decoder(exit_index), 0.0, [model.sos]
    for token in list(hyp) + [model.eos]:
        ys = torch.tensor([prefix])
        mask = torch.tril(torch.ones(len(prefix), len(prefix), dtype=torch.bool))[None]
        with torch.no_grad():
            logp, _ = dec.forward_one_step(ys, mask, hidden[None])
        total += float(logp[0, token])
        prefix.append(token)
    return total


def test_teacher_forced_score_is_the_sum_of_the_stepwise_decoder_scores(aed):
    model, _, _, outs, olens = aed
    hyps = [[3, 5, 7], [], [4], [9, 9, 2, 11, 6], [1, 2]]
    hyp_utt = torch.tensor([0, 0, 1, 2, 2])
    ys, ys_lens = model.hypothesis_ys(hyps)
    for k, (_, hidden) in enumerate(outs):
        batched = model.hypothesis_log_probs(k, hidden, olens, hyp_utt, ys, ys_lens)
        for n, (h, u) in enumerate(zip(hyps, hyp_utt.tolist())):
            alone = stepwise(model, k, hidden[u, :olens[u]], h)
            assert batched[n].item() == pytest.approx(alone, abs=1e-4)


def test_rescored_best_is_the_brute_force_best_of_the_ctc_nbest(aed):
    model, _, _, outs, olens = aed
    weight, bonus = 0.4, 0.3
    rescoring = AttentionRescoring(model, nbest_size=6, ctc_weight=weight, length_bonus=bonus)
    for k, (_, hidden) in enumerate(outs):
        logp = model.head(k).log_softmax(hidden).detach().numpy()
        chosen = hyps(rescoring, model, k, hidden, olens)
        for u, nbest in enumerate(CtcNbest(6).nbest_batch(logp, olens.numpy())):
            assert len(nbest) > 1  # a random model: a real choice
            brute = [weight * c + (1 - weight) * stepwise(model, k, hidden[u, :olens[u]], h) + bonus * len(h)
                     for h, c in nbest]
            assert chosen[u] == list(nbest[max(range(len(brute)), key=brute.__getitem__)][0])


def test_ctc_weight_one_keeps_the_ctc_nbest_top_and_zero_follows_the_decoder(aed):
    model, _, _, outs, olens = aed
    for k, (_, hidden) in enumerate(outs):
        logp = model.head(k).log_softmax(hidden).detach().numpy()
        tops = [list(nb[0][0]) for nb in CtcNbest(5).nbest_batch(logp, olens.numpy())]
        assert hyps(AttentionRescoring(model, 5, ctc_weight=1.0), model, k, hidden, olens) == tops
        ranked = AttentionRescoring(model, 5, ctc_weight=0.0).rescore(k, hidden, olens, logp)
        att_best = [list(max(nb, key=lambda r: r[2])[0]) for nb in ranked]
        assert hyps(AttentionRescoring(model, 5, ctc_weight=0.0), model, k, hidden, olens) == att_best


def test_speculative_skip_keeps_greedy_where_confident_and_rescores_elsewhere(aed):
    from ee_asr.exits.scores import ExitScorer

    model, _, _, outs, olens = aed
    hidden = outs[-1][1]
    logp = model.head(2).log_softmax(hidden).detach().numpy()
    seq = [s["seq_posterior"] for s in ExitScorer().score(logp, olens.numpy(), {"seq_posterior"}, 6)[0]]
    threshold = sorted(seq)[1]  # one utterance below it: rescored; the other two kept as greedy
    full = hyps(AttentionRescoring(model, 5), model, 2, hidden, olens)
    mixed = hyps(AttentionRescoring(model, 5, skip=("seq_posterior", threshold)), model, 2, hidden, olens)
    greedy = greedy_ids(logp, olens.numpy())
    assert mixed == [greedy[u] if seq[u] >= threshold else full[u] for u in range(3)]
    assert sum(s >= threshold for s in seq) == 2


def args_of(*argv):
    p = argparse.ArgumentParser()
    add_model_args(p)
    add_exit_args(p)
    p.add_argument("--lm", default=None)
    return p.parse_args(["--exp-dir", "x", *argv])


def test_search_rescore_decodes_every_exit_online_with_its_options():
    model = build(AED).eval()
    x, xl, _, _ = batch()
    engine = engine_from_args(args_of("--search", "rescore", "--rescore-nbest", "4", "--rescore-weight", "0.7",
                                      "--length-bonus", "0.5", "--rescore-skip", "seq_posterior:0.99"), model, {})
    r = engine.search
    assert isinstance(r, AttentionRescoring) and r.nbest is None
    assert (r.source.nbest_size, r.ctc_weight, r.length_bonus, r.skip) == (4, 0.7, 0.5, ("seq_posterior", 0.99))
    for layer in (2, 6):
        res = decode_online(model, x, xl, "fixed", layer, engine=engine)
        assert [r["exit"] for r in res] == [layer] * 3
        assert all(0 < t < VOCAB - 1 for r in res for t in r["ids"])
    with pytest.raises(UserError, match="--search rescore with --beam-size 5"):
        engine_from_args(args_of("--search", "rescore", "--beam-size", "5"), model, {})
    with pytest.raises(UserError, match="SCORE:THRESHOLD"):
        engine_from_args(args_of("--search", "rescore", "--rescore-skip", "seq_posterior"), model, {})
    with pytest.raises(UserError, match="model with decoders"):
        AttentionRescoring(build({**AED, "model": "ctc_ee", "model_conf": {}}))


class CharTokenizer:
    """Characters as tokens, blank first and <sos/eos> last (the tiny AED's 20 ids)."""

    def __init__(self, chars="abcdefghijklmnopqr"):
        self.token_list = ["<blank>"] + list(chars) + ["<sos/eos>"]
        self.vocab_size, self.sos_eos = len(self.token_list), len(self.token_list) - 1

    def encode(self, word):
        return [self.token_list.index(c) for c in word]


def test_rescoring_the_word_lm_beams_nbest_picks_only_lm_words(aed, tmp_path):
    from ee_asr.data.ngram_lm import build_arpa
    from ee_asr.decode.lm_beam import LMBeamSearch

    model, _, _, outs, olens = aed
    tok = CharTokenizer()
    words = ["abc", "de", "fgh", "ij", "kl", "mno", "pq", "r"]
    build_arpa([words[i:] + words[:i] for i in range(len(words))] * 3, 2, tmp_path / "lm.arpa")
    lm = LMBeamSearch(tok, tmp_path / "lm.arpa", lm_weight=0.5, word_score=1.0)
    spellings = {tuple(tok.encode(w)) for w in words}
    for k, (_, hidden) in enumerate(outs):
        logp = model.head(k).log_softmax(hidden).detach().numpy()
        ranked = AttentionRescoring(model, 4, 0.5, lm_search=lm).rescore(k, hidden, olens, logp)
        assert all(len(nb) > 1 for nb in ranked)
        for nb in ranked:  # every hypothesis spells LM words (read greedily: no word prefixes another)
            for h, *_ in nb:
                rest = h
                while rest:
                    word = next(s for s in spellings if rest[:len(s)] == s)
                    rest = rest[len(word):]
        # CTC weight 1: the LM beam's own best
        top = hyps(AttentionRescoring(model, 4, 1.0, lm_search=lm), model, k, hidden, olens)
        assert top == lm.search(logp, olens.numpy())[0]


def test_rescoring_for_the_exit_engine_rescores_only_the_stopping_rows(aed):
    model, _, _, outs, olens = aed
    hidden = outs[1][1]
    rescoring = AttentionRescoring(model, 5, 0.4)
    every = hyps(rescoring, model, 1, hidden, olens)
    assert hyps(rescoring, model, 1, hidden, olens, rows=[2, 0]) == [every[2], every[0]]
