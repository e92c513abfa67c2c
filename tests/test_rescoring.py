"""Attention rescoring at every exit of an early-exit AED: the decoder's batched teacher-forced
scores, the rescored choice, and the search options."""

import argparse

import pytest
import torch
from test_architectures import AED, VOCAB, build
from test_model import batch

from ee_asr.bin.inference_args import add_model_args, make_search
from ee_asr.common.errors import UserError
from ee_asr.decode.attention_rescoring import AttentionRescoring, RescoringExitSearch
from ee_asr.decode.dynamic import decode_dynamic
from ee_asr.exits.ctc_nbest import CtcNbest
from ee_asr.models.ctc_greedy import greedy_ids


@pytest.fixture(scope="module")
def aed():
    model = build(AED).eval()
    torch.manual_seed(1)
    x, xl, _, _ = batch(b=3, t=60)
    xl = torch.tensor([60, 44, 30])  # padded: every utterance's memory must be masked to its own length
    outs, olens = model.exit_hidden(x, xl)
    return model, x, xl, outs, olens


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
        logp = model.head(k).log_softmax(hidden)
        chosen = rescoring.hypotheses(k, hidden, olens, logp)
        for u, nbest in enumerate(CtcNbest(6).nbest_batch(logp, olens)):
            assert len(nbest) > 1  # a random model: a real choice
            brute = [weight * c + (1 - weight) * stepwise(model, k, hidden[u, :olens[u]], h) + bonus * len(h)
                     for h, c in nbest]
            assert chosen[u] == list(nbest[max(range(len(brute)), key=brute.__getitem__)][0])


def test_ctc_weight_one_keeps_the_ctc_nbest_top_and_zero_follows_the_decoder(aed):
    model, _, _, outs, olens = aed
    for k, (_, hidden) in enumerate(outs):
        logp = model.head(k).log_softmax(hidden)
        tops = [list(nb[0][0]) for nb in CtcNbest(5).nbest_batch(logp, olens)]
        assert AttentionRescoring(model, 5, ctc_weight=1.0).hypotheses(k, hidden, olens, logp) == tops
        ranked = AttentionRescoring(model, 5, ctc_weight=0.0).rescore(k, hidden, olens, logp)
        att_best = [list(max(nb, key=lambda r: r[2])[0]) for nb in ranked]
        assert AttentionRescoring(model, 5, ctc_weight=0.0).hypotheses(k, hidden, olens, logp) == att_best


def test_speculative_skip_keeps_greedy_where_confident_and_rescores_elsewhere(aed):
    model, _, _, outs, olens = aed
    hidden = outs[-1][1]
    logp = model.head(2).log_softmax(hidden)
    scores = [{"seq_posterior": p} for p in (0.9, 0.1, 0.95)]
    full = AttentionRescoring(model, 5).hypotheses(2, hidden, olens, logp)
    mixed = AttentionRescoring(model, 5, skip=("seq_posterior", 0.5)).hypotheses(2, hidden, olens, logp, scores)
    greedy = greedy_ids(logp, olens)
    assert mixed == [greedy[0], full[1], greedy[2]]
    with pytest.raises(ValueError, match="seq_posterior"):
        AttentionRescoring(model, 5, skip=("seq_posterior", 0.5)).hypotheses(2, hidden, olens, logp)


def args_of(*argv):
    p = argparse.ArgumentParser()
    add_model_args(p)
    return p.parse_args(["--exp-dir", "x", *argv])


def test_search_rescore_decodes_every_exit_online_with_its_options():
    model = build(AED).eval()
    x, xl, _, _ = batch()
    search = make_search(args_of("--search", "rescore", "--rescore-nbest", "4", "--rescore-weight", "0.7",
                                 "--length-bonus", "0.5", "--rescore-skip", "seq_posterior:0.99"), model, 0)
    assert isinstance(search, RescoringExitSearch)
    r = search.rescoring
    assert (r.nbest.nbest_size, r.ctc_weight, r.length_bonus, r.skip) == (4, 0.7, 0.5, ("seq_posterior", 0.99))
    for layer in (2, 6):
        res = decode_dynamic(model, x, xl, "fixed", layer, search=search)
        assert [r["exit"] for r in res] == [layer] * 3
        assert all(0 < t < VOCAB - 1 for r in res for t in r["ids"])
    with pytest.raises(UserError, match="--search rescore with --beam-size 5"):
        make_search(args_of("--search", "rescore", "--beam-size", "5"), model, 0)
    with pytest.raises(UserError, match="SCORE:THRESHOLD"):
        make_search(args_of("--search", "rescore", "--rescore-skip", "seq_posterior"), model, 0)
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
        logp = model.head(k).log_softmax(hidden)
        ranked = AttentionRescoring(model, 4, 0.5, lm_search=lm).rescore(k, hidden, olens, logp)
        assert all(len(nb) > 1 for nb in ranked)
        for nb in ranked:  # every hypothesis spells LM words (read greedily: no word prefixes another)
            for h, *_ in nb:
                rest = h
                while rest:
                    word = next(s for s in spellings if rest[:len(s)] == s)
                    rest = rest[len(word):]
        # CTC weight 1: the LM beam's own best
        top = AttentionRescoring(model, 4, 1.0, lm_search=lm).hypotheses(k, hidden, olens, logp)
        assert top == lm.search(logp, olens)[0]


def test_rescoring_search_for_the_exit_engine_rescores_the_stopping_rows(aed):
    from types import SimpleNamespace

    from ee_asr.decode.attention_rescoring import RescoringSearch

    model, _, _, outs, olens = aed
    hidden = outs[1][1]
    logp = model.head(1).log_softmax(hidden)
    backend = SimpleNamespace(hidden=lambda state: (hidden, olens))  # what decode/torch_backend.py gives on main
    view = SimpleNamespace(backend=backend, state=None, exit_index=1, log_probs=logp.detach().numpy(),
                           lengths=olens.numpy())
    rescoring = AttentionRescoring(model, 5, 0.4)
    rows = [2, 0]
    expect = rescoring.hypotheses(1, hidden[[2, 0]], olens[[2, 0]], logp[[2, 0]])
    assert RescoringSearch(rescoring).hypotheses(view, rows) == expect
    assert RescoringSearch.nbest is None
    with pytest.raises(UserError, match="rescore-skip"):
        RescoringSearch(AttentionRescoring(model, 5, skip=("seq_posterior", 0.5)))
