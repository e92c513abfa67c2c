"""The word n-gram LM: its ARPA file is a proper distribution that KenLM reads, the LM beam
lets the LM fix a word, and decoding with it runs at every exit."""

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from flashlight.lib.text.decoder import kenlm
from flashlight.lib.text.dictionary import create_word_dict
from test_model import TINY

from conftest import TEXTS, make_dump
from ee_asr.bin import build_lm, decode, score
from ee_asr.common.errors import UserError
from ee_asr.data.ngram_lm import BOS, EOS, UNK, build_arpa, estimate, probability, write_arpa
from ee_asr.data.tokenizer import Tokenizer, train_sentencepiece
from ee_asr.decode.lm_beam import LMBeamSearch
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


def test_decode_with_the_lm_at_every_exit_writes_lm_words_beside_greedy(tmp_path):
    data = make_dump(tmp_path, "valid", [0.6 + 0.05 * i for i in range(4)])
    (tmp_path / "text.txt").write_text("\n".join(TEXTS) + "\n")
    train_sentencepiece(tmp_path / "text.txt", tmp_path / "bpe", vocab_size=20, model_type="char")
    tok = Tokenizer(tmp_path / "bpe.model")
    config = {**TINY, "vocab_size": tok.vocab_size, "bpemodel": str(tmp_path / "bpe.model"), "model_conf": {}}
    torch.manual_seed(0)
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save(build_model(config).state_dict(), exp / "model.pth")
    build_lm.main(["--text", str(data / "text"), "--order", "2", "--output", str(tmp_path / "lm.arpa")])
    common = ["--exp-dir", str(exp), "--data-dir", str(data)]
    decode.main(common)
    decode.main([*common, "--lm", str(tmp_path / "lm.arpa"), "--lm-weight", "2", "--word-score", "1",
                 "--beam-size", "8", "--nbest-size", "4"])
    greedy = [json.loads(line) for line in (exp / "decode_valid" / "exits.jsonl").read_text().splitlines()]
    lm = [json.loads(line) for line in (exp / "decode_valid_lm" / "exits.jsonl").read_text().splitlines()]
    assert sorted((r["utt"], r["exit"]) for r in lm) == sorted((r["utt"], r["exit"]) for r in greedy)
    assert {r["exit"] for r in lm} == {2, 4, 6}
    lexicon = {w for t in TEXTS[:4] for w in t.split()}
    assert all(set(r["hyp"].split()) <= lexicon for r in lm)
    assert any(r["hyp"] for r in lm)  # a word score of 1 makes words worth emitting
    assert all(0.0 < r["nbest_posterior"] <= 1.0 for r in lm)
    assert (exp / "decode_valid_lm" / "exit6" / "text").is_file()
    score.main(["--exp-dir", str(exp), "--bootstrap", "10"])
    scored = (exp / "RESULTS.md").read_text()
    assert "decode_valid/exit2" in scored and "decode_valid_lm/exit2" in scored
