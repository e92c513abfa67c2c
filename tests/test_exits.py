"""Exit-selection maths, the incremental decoder, and the offline sweep."""

import json
import math

import numpy as np
import pytest
import torch
from test_model import batch, count_layer_calls, tiny_model

from conftest import decode_online, run_py
from ee_asr.common.errors import UserError
from ee_asr.exits.ctc_prefix_beam import prefix_beam_search
from ee_asr.exits.nbest_posterior import nbest_posterior
from ee_asr.exits.policies import parse_grid, stops_at
from ee_asr.exits.scores import ExitScorer
from ee_asr.score.sweep import sweep


def test_entropy_and_maxprob_on_hand_made_posteriors():
    certain = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 3)
    uniform = torch.full((3, 4), 0.25)
    lp = torch.stack([certain, uniform]).clamp_min(1e-30).log().numpy()
    scores, _ = ExitScorer().score(lp, np.array([3, 2]), {"entropy", "maxprob"}, 2)
    assert [s["entropy"] for s in scores] == pytest.approx([0.0, 1.0], abs=1e-6)
    assert [s["maxprob"] for s in scores] == pytest.approx([1.0, 0.25])
    # padding beyond the length does not count: frames 0-1 uniform, frame 2 certain
    mixed = torch.stack([uniform[0], uniform[0], certain[0]]).clamp_min(1e-30).log()[None].numpy()
    for n, want in ((2, 1.0), (3, 2 / 3)):
        assert ExitScorer().score(mixed, np.array([n]), {"entropy"}, 2)[0][0]["entropy"] == pytest.approx(want)


def test_prefix_beam_search_and_nbest_posterior():
    # two frames, tokens {blank, a}: p(a)=0.6 then p(a)=0.6; paths to "a": (a,a),(a,-),(-,a)
    p = np.log(np.array([[0.4, 0.6], [0.4, 0.6]]))
    nbest = dict(prefix_beam_search(p, beam=5, token_beam=2))
    assert math.exp(nbest[(1,)]) == pytest.approx(0.36 + 0.24 + 0.24)
    assert math.exp(nbest[()]) == pytest.approx(0.16)
    assert math.exp(nbest[(1, 1)]) == pytest.approx(0.0, abs=1e-12) if (1, 1) in nbest else True
    share = nbest_posterior(list(nbest.items()))
    assert share == pytest.approx(0.84 / (0.84 + 0.16))


def test_policy_rules():
    assert stops_at("entropy", 0.2, 2, {"entropy": 0.1}, 12)
    assert not stops_at("entropy", 0.2, 2, {"entropy": 0.3}, 12)
    assert stops_at("entropy", 0.2, 12, {"entropy": 0.9}, 12)  # the last exit always answers
    assert stops_at("maxprob", 0.9, 4, {"maxprob": 0.95}, 12)
    assert stops_at("nbest", 0.8, 4, {"nbest_posterior": 0.8}, 12)
    assert stops_at("fixed", 6, 6, {}, 12) and not stops_at("fixed", 6, 4, {}, 12)


def test_layers_above_the_exit_are_never_computed():
    model = tiny_model().eval()
    calls = count_layer_calls(model)
    x, xl, _, _ = batch()
    res = decode_online(model, x, xl, "fixed", 2)
    assert calls == [0, 1] and all(r["exit"] == 2 and r["layers_computed"] == 2 for r in res)


def test_exited_utterances_leave_the_batch():
    model = tiny_model().eval()
    rows = []
    for layer in model.encoder.encoders:
        layer.register_forward_hook(lambda m, inp, out: rows.append(out[0][0].shape[0]))
    x, xl, _, _ = batch()
    first = decode_online(model, x, xl, "entropy", 2.0)  # entropy < 2 everywhere: all stop at exit 2
    assert [r["exit"] for r in first] == [2, 2, 2] and rows == [3, 3]
    rows.clear()
    ent = [r["scores"][2]["entropy"] for r in first]
    thr = sorted(ent)[1]  # exactly one utterance has a lower entropy than this
    res = decode_online(model, x, xl, "entropy", thr)
    assert sorted(r["exit"] for r in res)[0] == 2
    # two layers for all three rows, then the survivors only
    assert rows[:2] == [3, 3] and all(n <= 2 for n in rows[2:])
    assert sum(rows) == sum(r["layers_computed"] for r in res)


# batched == one by one, for every policy: tests/test_exit_policies.py


RECORDS = [  # utt, exit, ref_words, errors, entropy
    ("a", 2, 4, 2, 0.10), ("a", 4, 4, 1, 0.05), ("a", 6, 4, 1, 0.01),
    ("b", 2, 6, 0, 0.30), ("b", 4, 6, 0, 0.08), ("b", 6, 6, 0, 0.02),
]


def records():
    return [{"utt": u, "exit": e, "ref_words": w, "errors": err, "entropy": ent} for u, e, w, err, ent in RECORDS]


def test_sweep_hand_computed():
    # threshold 0.09: a stops at 4 (0.05), b at 4 (0.08) -> errors 1/10, mean exit 4
    (p,) = sweep(records(), "entropy", [0.09])
    assert p["wer"] == pytest.approx(10.0) and p["mean_exit"] == 4 and p["compute_ratio"] == pytest.approx(4 / 6)
    # threshold 0.2: a at 2 (2 errors), b at 4 -> 2/10, mean 3
    (p,) = sweep(records(), "entropy", [0.2])
    assert p["wer"] == pytest.approx(20.0) and p["mean_exit"] == 3
    (o,) = sweep(records(), "oracle")
    assert o["mean_exit"] == 3 and o["wer"] == pytest.approx(10.0)  # a at 4, b at 2
    fixed = sweep(records(), "fixed")
    assert [f["wer"] for f in fixed] == pytest.approx([20.0, 10.0, 10.0])


def test_sweep_cli_writes_markdown_and_json(tmp_path):
    f = tmp_path / "scores.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in records()))
    out = run_py("ee_asr.bin.sweep", str(f), "--policy", "entropy", "--threshold", "0.09", "0.2").stdout
    assert "|entropy|0.09|10.00|4.00|0.667|" in out
    points = json.loads((tmp_path / "sweep_entropy.json").read_text())
    assert [p["threshold"] for p in points] == [0.09, 0.2]
    bad = run_py("ee_asr.bin.sweep", str(f), "--policy", "maxprob", "--threshold", "0.5", check=False)
    assert bad.returncode == 2 and "needs a 'maxprob' score" in bad.stderr


def test_policy_grid_parses_and_names_a_bad_spec():
    assert parse_grid(["fixed:2,4", "entropy:0.05"]) == [("fixed", [2.0, 4.0]), ("entropy", [0.05])]
    with pytest.raises(UserError, match="unknown policy 'entropi'"):
        parse_grid(["entropi:0.1"])
    with pytest.raises(UserError, match="bad policy spec 'nbest:0.8,x'"):
        parse_grid(["nbest:0.8,x"])
