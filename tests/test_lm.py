"""The word n-gram LM: its ARPA file is a proper distribution that KenLM reads, the LM beam
lets the LM fix a word, and decoding with it runs at every exit, with a policy (decode_policy,
transcribe, benchmark) where an utterance stops."""

import itertools
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from flashlight.lib.text.decoder import kenlm
from flashlight.lib.text.dictionary import create_word_dict
from test_model import TINY

from conftest import ROOT, TEXTS, decode_online, make_dump
from ee_asr.api.lm_options import lm_search_from_args
from ee_asr.bin import benchmark, build_lm, decode, decode_policy, score, transcribe
from ee_asr.common.errors import UserError
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.ngram_lm import BOS, EOS, UNK, build_arpa, estimate, probability, write_arpa
from ee_asr.data.tokenizer import Tokenizer, train_sentencepiece
from ee_asr.decode.lm_beam import LMBeamSearch
from ee_asr.decode.torch_backend import torch_engine
from ee_asr.models.load import load_trained
from ee_asr.models.registry import build_model

TEXT = ["the cat sat on the mat", "the dog sat on the log", "a cat sat", "the cat ran", "a dog ran on the mat"]


def read_arpa(path):
    """{gram: (log10 p, log10 backoff)} straight from the file."""
    table, order = {}, 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.endswith("-grams:"):
            order = int(line[1])
        elif order and line and not line.startswith("\\"):
            fields = line.split("\t")
            table[tuple(fields[1].split())] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
    return table


def arpa_prob(table, gram):
    """p(w | h) by ARPA backoff over the file's entries."""
    if gram in table:
        return 10 ** table[gram][0]
    if len(gram) == 1:
        return 10 ** table[(UNK,)][0]
    return 10 ** table.get(gram[:-1], (0.0, 0.0))[1] * arpa_prob(table, gram[1:])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_every_context_sums_to_one_in_the_arpa_file(tmp_path, order):
    sentences = [s.split() for s in TEXT]
    probs, backoffs, vocab = estimate(sentences, order)
    write_arpa(tmp_path / "lm.arpa", probs, backoffs)
    table = read_arpa(tmp_path / "lm.arpa")
    predicted = [w for w in vocab if w != BOS]
    assert EOS in predicted and UNK in predicted
    contexts = {()} | {g for k in range(1, order) for g in probs[k]} | ({(BOS,)} if order > 1 else set())
    for h in contexts:
        total = sum(arpa_prob(table, h + (w,)) for w in predicted)
        assert total == pytest.approx(1.0, abs=1e-4), h
        assert sum(probability(probs, backoffs, h + (w,)) for w in predicted) == pytest.approx(1.0, abs=1e-9)
    # seen continuations are likelier than unseen ones
    if order > 1:
        assert arpa_prob(table, ("cat", "sat")) > arpa_prob(table, ("cat", "mat"))


def test_build_lm_cli_writes_an_arpa_that_kenlm_scores_as_written(tmp_path):
    text = tmp_path / "text"
    text.write_text("".join(f"utt{i} {s}\n" for i, s in enumerate(TEXT)))
    build_lm.main(["--text", str(text), "--order", "3", "--output", str(tmp_path / "lm.arpa")])
    table = read_arpa(tmp_path / "lm.arpa")
    words = sorted({w for s in TEXT for w in s.split()})
    word_dict = create_word_dict({w: [[]] for w in words + [UNK]})
    lm = kenlm.KenLM(str(tmp_path / "lm.arpa"), word_dict)
    for w1, w2 in itertools.product(["the", "cat", "on"], ["cat", "sat", "mat"]):
        state = lm.start(False)
        state, s1 = lm.score(state, word_dict.get_index(w1))
        _, s2 = lm.score(state, word_dict.get_index(w2))
        # KenLM gives log10 scores; ours from the file: p(w1 | <s>) p(w2 | <s> w1)
        assert s1 == pytest.approx(math.log10(arpa_prob(table, (BOS, w1))), abs=1e-4)
        assert s2 == pytest.approx(math.log10(arpa_prob(table, (BOS, w1, w2))), abs=1e-4)


def test_plain_text_and_bad_input(tmp_path):
    plain = tmp_path / "corpus.txt"
    plain.write_text("\n".join(TEXT) + "\n")
    build_lm.main(["--text", str(plain), "--text-format", "plain", "--order", "2", "--output", str(tmp_path / "a")])
    assert ("the", "cat") in read_arpa(tmp_path / "a")
    with pytest.raises(UserError, match="missing"):
        build_lm.main(["--text", str(tmp_path / "nope"), "--output", str(tmp_path / "b")])
    with pytest.raises(UserError, match="order"):
        build_lm.main(["--text", str(plain), "--text-format", "plain", "--order", "0", "--output", str(tmp_path / "b")])
    assert not (tmp_path / "b").exists()


class CharTokenizer:
    """Characters as tokens, blank first and <sos/eos> last, as data/tokenizer.py lays them out."""

    def __init__(self, chars):
        self.token_list = ["<blank>"] + list(chars) + ["<sos/eos>"]
        self.vocab_size, self.sos_eos = len(self.token_list), len(self.token_list) - 1

    def encode(self, word):
        return [self.token_list.index(c) for c in word]

    def decode(self, ids):
        return "".join(self.token_list[i] for i in ids)


def emissions(tok, frames):
    rows = []
    for dist in frames:
        p = torch.full((tok.vocab_size,), 1e-4)
        for c, v in dist.items():
            p[tok.token_list.index(c)] = v
        rows.append((p / p.sum()).log())
    return torch.stack(rows)[None]


def test_the_lm_beam_fixes_a_word_the_acoustics_got_wrong(tmp_path):
    tok = CharTokenizer("acpst")
    build_arpa([["cat", "sat"]] * 20 + [["cap"]] * 2 + [["sat"]] * 3, 2, tmp_path / "lm.arpa")
    # "p" beats "t" in the third frame: greedy (and the beam without LM) say "cap sat"
    em = emissions(tok, [{"c": .9}, {"a": .9}, {"p": .6, "t": .4}, {"<blank>": .9}, {"s": .9}, {"a": .9}, {"t": .9}])
    without = LMBeamSearch(tok, tmp_path / "lm.arpa", lm_weight=0.0, nbest_size=5)
    with_lm = LMBeamSearch(tok, tmp_path / "lm.arpa", lm_weight=2.0, nbest_size=5)
    ids0, post0 = without.search(em, torch.tensor([7]))
    ids2, post2 = with_lm.search(em, torch.tensor([7]))
    assert tok.decode(ids0[0]) == "capsat"
    assert tok.decode(ids2[0]) == "catsat"
    # both readings are in the beam; the LM makes the best one surer
    assert 0.5 < post0[0] < 0.7 and post2[0] > post0[0]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """{exp, data, lm, words}: a random-weight tiny CTC model over characters, a 4-utterance dump
    (wav.scp included) and a bigram LM of its text, whose words are `words`."""
    root = tmp_path_factory.mktemp("lm")
    data = make_dump(root, "valid", [0.6 + 0.05 * i for i in range(4)])
    (root / "text.txt").write_text("\n".join(TEXTS) + "\n")
    train_sentencepiece(root / "text.txt", root / "bpe", vocab_size=20, model_type="char")
    tok = Tokenizer(root / "bpe.model")
    config = {**TINY, "vocab_size": tok.vocab_size, "bpemodel": str(root / "bpe.model"), "model_conf": {}}
    torch.manual_seed(0)
    exp = root / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save(build_model(config).state_dict(), exp / "model.pth")
    build_lm.main(["--text", str(data / "text"), "--order", "2", "--output", str(root / "lm.arpa")])
    return {"exp": exp, "data": data, "lm": root / "lm.arpa", "words": {w for t in TEXTS[:4] for w in t.split()}}


def lm_options(tiny_lm):
    # a word score of 1 makes words worth emitting for the random model
    return ["--lm", str(tiny_lm["lm"]), "--lm-weight", "2", "--word-score", "1", "--beam-size", "8"]


def copy_exp(tiny_lm, tmp_path):
    """The experiment in a test's own dir: the tools write their decode dirs into it."""
    return shutil.copytree(tiny_lm["exp"], tmp_path / "exp")


def read_text(path):
    return dict((line.split(" ", 1) + [""])[:2] for line in Path(path).read_text().splitlines())


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_decode_with_the_lm_at_every_exit_writes_lm_words_beside_greedy(tiny_lm, tmp_path):
    exp, data = copy_exp(tiny_lm, tmp_path), tiny_lm["data"]
    common = ["--exp-dir", str(exp), "--data-dir", str(data)]
    decode.main(common)
    decode.main([*common, *lm_options(tiny_lm), "--nbest-size", "4"])
    greedy = read_jsonl(exp / "decode_valid" / "exits.jsonl")
    lm = read_jsonl(exp / "decode_valid_lm" / "exits.jsonl")
    assert sorted((r["utt"], r["exit"]) for r in lm) == sorted((r["utt"], r["exit"]) for r in greedy)
    assert {r["exit"] for r in lm} == {2, 4, 6}
    assert all(set(r["hyp"].split()) <= tiny_lm["words"] for r in lm)
    assert any(r["hyp"] for r in lm)
    assert all(0.0 < r["nbest_posterior"] <= 1.0 for r in lm)
    assert (exp / "decode_valid_lm" / "exit6" / "text").is_file()
    score.main(["--exp-dir", str(exp), "--bootstrap", "10"])
    scored = (exp / "RESULTS.md").read_text()
    assert "decode_valid/exit2" in scored and "decode_valid_lm/exit2" in scored


def test_decode_policy_with_the_lm_says_at_a_fixed_exit_what_decode_says_there(tiny_lm, tmp_path):
    exp, data = copy_exp(tiny_lm, tmp_path), tiny_lm["data"]
    common = ["--exp-dir", str(exp), "--data-dir", str(data), *lm_options(tiny_lm), "--nbest-size", "4"]
    decode.main(common)
    decode_policy.main([*common, "--grid", "fixed:4", "nbest:1", "seqpost:0"])
    out = exp / "decode_valid_lm"
    assert not (exp / "decode_valid").exists()  # the LM's decodings go beside the greedy ones
    fixed = read_jsonl(out / "policy_fixed" / "thr_4" / "results.jsonl")
    assert {r["utt"]: r["hyp"] for r in fixed} == read_text(out / "exit4" / "text")
    assert any(r["hyp"] for r in fixed) and all(set(r["hyp"].split()) <= tiny_lm["words"] for r in fixed)
    # nbest reads the LM beam's N-best posterior: threshold 1 stops only where the beam is certain (one word
    # sequence), else the last exit answers; the answer is that exit's LM hypothesis
    nbest = read_jsonl(out / "policy_nbest" / "thr_1" / "results.jsonl")
    texts = {layer: read_text(out / f"exit{layer}" / "text") for layer in (2, 4, 6)}
    for r in nbest:
        certain = next((layer for layer in (2, 4) if str(layer) in r["scores"]
                        and r["scores"][str(layer)]["nbest_posterior"] >= 1.0), 6)
        assert r["exit"] == certain and r["hyp"] == texts[certain][r["utt"]]
        # scored below the last exit only, which answers anyway and so needs no posterior
        assert all(0.0 < s["nbest_posterior"] <= 1.0 for layer, s in r["scores"].items() if layer != "6")
    seqpost = read_jsonl(out / "policy_seqpost" / "thr_0" / "results.jsonl")
    assert {r["utt"]: r["hyp"] for r in seqpost} == read_text(out / "exit2" / "text")


def counted_search(tiny_lm, policy_args=()):
    """(model, features, lengths, an exit engine with the LM beam, the batch sizes its LM beam was run on)."""
    model, config = load_trained(tiny_lm["exp"])
    args = decode_policy.get_parser().parse_args(["--exp-dir", "x", "--data-dir", "x", "--policy", "fixed",
                                                  "--threshold", "2", *lm_options(tiny_lm), *policy_args])
    search = lm_search_from_args(args, config)
    calls, run = [], search.search
    def counting(log_probs, lengths, rows=None):
        calls.append(len(lengths) if rows is None else len(rows))
        return run(log_probs, lengths, rows)
    search.search = counting
    search = torch_engine(model, args.nbest_size, search=search)
    dataset = FeatureDataset(tiny_lm["data"])
    _, x, xl, _, _ = dataset.collate(sorted(dataset.lengths))
    return model, x, xl, search, calls


@pytest.mark.parametrize("policy, threshold, exits", [("fixed", 4, {4}), ("entropy", -1.0, {6}), ("seqpost", 0, {2})])
def test_the_lm_beam_runs_only_where_utterances_stop(tiny_lm, policy, threshold, exits):
    model, x, xl, search, calls = counted_search(tiny_lm)
    results = decode_online(model, x, xl, policy, threshold, engine=search)
    assert {r["exit"] for r in results} == exits
    assert calls == [4]  # once, on the 4 utterances where they stop; not at the exits they pass
    assert all(set(r["scores"]) == set(range(2, min(exits) + 1, 2)) for r in results)


def test_the_nbest_policy_runs_the_lm_beam_at_every_exit_it_passes(tiny_lm):
    model, x, xl, search, calls = counted_search(tiny_lm, ["--nbest-size", "4"])
    results = decode_online(model, x, xl, "nbest", 2.0, engine=search)  # never sure enough: the last exit
    # the posterior at every exit below the last; at the last, which answers anyway, only the hypotheses
    assert calls == [4, 4, 4]
    assert all(r["exit"] == 6 and set(r["scores"][4]) == {"nbest_posterior"} and not r["scores"][6] for r in results)
    with pytest.raises(SystemExit):  # K >= 1: an N-best of no hypothesis has no meaning
        decode_policy.get_parser().parse_args(["--exp-dir", "x", "--data-dir", "x", "--nbest-size", "0"])


def test_transcribe_with_the_lm_says_what_decode_policy_says(tiny_lm, tmp_path, capsys):
    exp, data = copy_exp(tiny_lm, tmp_path), tiny_lm["data"]
    decode_policy.main(["--exp-dir", str(exp), "--data-dir", str(data), *lm_options(tiny_lm),
                        "--policy", "fixed", "--threshold", "4"])
    capsys.readouterr()
    transcribe.main(["--exp-dir", str(exp), "--policy", "fixed", "--threshold", "4", *lm_options(tiny_lm), str(data)])
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    decoded = read_jsonl(exp / "decode_valid_lm" / "policy_fixed" / "thr_4" / "results.jsonl")
    assert {name: text for name, text, _, _ in lines} == {r["utt"]: r["hyp"] for r in decoded}
    assert all(exit_ == "exit=4" for _, _, exit_, _ in lines)
    with pytest.raises(UserError, match="--backend torch"):  # before looking for the export
        transcribe.main(["--exp-dir", str(exp), "--backend", "onnx", "--policy", "fixed", "--threshold", "4",
                         *lm_options(tiny_lm), str(data)])


def test_transcribe_still_starts_without_torch():
    # its LM options come from api/lm_options.py, which must not load torch for --backend onnx
    code = "import sys, ee_asr.bin.transcribe; assert 'torch' not in sys.modules, 'torch was imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_benchmark_times_the_lm_beam_at_every_exit_and_point(tiny_lm, tmp_path):
    out = tmp_path / "bench.json"
    benchmark.main(["--exp-dir", str(tiny_lm["exp"]), "--data-dir", str(tiny_lm["data"]), "--repeats", "1",
                    "--train-steps", "0", "--points", "fixed:4", "seqpost:0", *lm_options(tiny_lm),
                    "--output", str(out)])
    result = json.loads(out.read_text())
    assert [e["exit"] for e in result["exits"]] == [2, 4, 6] and result["exits"][-1]["ratio"] == 1.0
    assert all(e["lm_seconds"] > 0 and e["lm_ratio"] > 0 for e in result["exits"])
    rows = {(p["policy"], p["threshold"]): p for p in result["policies"]}
    assert set(rows) == {("fixed", 6), ("fixed", 4), ("seqpost", 0)}
    # the LM beam's full decoding is timed against greedy full decoding, not against itself
    assert rows[("fixed", 6)]["time_ratio"] != 1.0
    assert rows[("fixed", 4)]["fixed_time_ratio"] == pytest.approx(result["exits"][1]["lm_ratio"])
    assert result["lm"] == str(tiny_lm["lm"]) and result["train_step_ratio"] is None
