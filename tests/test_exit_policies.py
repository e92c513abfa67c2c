"""The compiled N-best against the Python reference, the sequence posterior, the N-best's bounds,
the agree, learned and budget policies, batched == one-by-one for every policy, and the
classifier's round trip."""

import math

import numpy as np
import pytest
import torch
from test_model import batch, count_layer_calls, tiny_model

from conftest import decode_online
from ee_asr.common.errors import UserError
from ee_asr.decode.torch_backend import torch_engine
from ee_asr.exits.agreement import disagreement
from ee_asr.exits.ctc_forward import sequence_posterior
from ee_asr.exits.ctc_greedy import greedy_ids
from ee_asr.exits.ctc_nbest import CtcNbest, nbest_posterior
from ee_asr.exits.ctc_prefix_beam import prefix_beam_search
from ee_asr.exits.exit_classifier import FEATURES, ExitClassifier
from ee_asr.exits.nbest_bounds import BoundedNbest
from ee_asr.exits.policies import ONLINE_POLICIES, RULES, last_exit, parse_grid, stops_at
from ee_asr.exits.scores import ExitScorer


def peaky_posteriors(seed, t=20, v=30, scale=4.0):
    """Random CTC posteriors as peaked as a trained model's (a few likely tokens per frame)."""
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(t, v, generator=g) * scale, -1)


@pytest.mark.parametrize("seed,k", [(0, 10), (1, 10), (2, 50), (3, 100)])
def test_compiled_nbest_matches_the_python_prefix_beam(seed, k):
    lp = peaky_posteriors(seed)
    nb = CtcNbest(k, token_beam=8)
    got = nb.nbest(lp.numpy())
    ref = prefix_beam_search(lp.numpy(), beam=nb.beam, token_beam=8)[:k]  # the same beam width
    # same best hypothesis; its total may miss a few alignments at a small beam (flashlight counts a
    # prefix ending in blank and in a token as two beam entries), never more than the reference has
    assert got[0][0] == ref[0][0] and ref[0][1] - 0.1 < got[0][1] <= ref[0][1] + 1e-6
    assert len(got) == k and len({h for h, _ in got}) == k
    assert nbest_posterior(got) == pytest.approx(nbest_posterior(ref), rel=0.02)


def test_compiled_nbest_batch_reads_each_utterance_at_its_length():
    lps = [peaky_posteriors(s, t=t) for s, t in ((4, 20), (5, 12))]
    padded = torch.full((2, 20, 30), -30.0)
    padded[0], padded[1, :12] = lps[0], lps[1]
    nb = CtcNbest(10)
    together = nb.nbest_batch(padded.numpy(), np.array([20, 12]))
    for lp, got in zip(lps, together):
        assert got == nb.nbest(lp.numpy())


def test_sequence_posterior_sums_over_alignments():
    # two frames, tokens {blank, a}, p(a)=0.6 each: p("a") = 0.6*0.6 + 0.6*0.4 + 0.4*0.6
    lp = torch.log(torch.tensor([[[0.4, 0.6], [0.4, 0.6]]]))
    lens = np.array([2])
    assert sequence_posterior(lp.numpy(), lens, [[1]])[0] == pytest.approx(0.84)
    assert sequence_posterior(lp.numpy(), lens, [[]])[0] == pytest.approx(0.16)
    assert ExitScorer().score(lp.numpy(), lens, {"blank_share"}, 2)[0][0]["blank_share"] == 0.0


def test_nbest_posterior_tends_to_the_sequence_posterior_as_k_grows():
    lp = peaky_posteriors(6, t=6, v=5, scale=2.0)
    best = prefix_beam_search(lp.numpy(), beam=2000, token_beam=5)[0]
    exact = sequence_posterior(lp[None].numpy(), np.array([6]), [list(best[0])])[0]
    shares = [nbest_posterior(CtcNbest(k, token_beam=5).nbest(lp.numpy())) for k in (2, 20, 2000)]
    assert shares[0] > shares[1] > shares[2] and shares[2] == pytest.approx(exact, rel=1e-3)
    assert math.exp(best[1]) == pytest.approx(exact, rel=1e-4)


def test_nbest_bounds_decide_as_the_k_best_beam_and_skip_it_where_they_can():
    # utterances from nearly certain to very uncertain
    lp = torch.stack([peaky_posteriors(10 + i, scale=2.0 + 0.25 * i) for i in range(24)])
    lp, lengths = lp.numpy(), np.full(24, 20)
    seq = sequence_posterior(lp, lengths, greedy_ids(lp, lengths)).tolist()
    shares = {k: CtcNbest(k).posteriors(lp, lengths) for k in (10, 100, 300)}
    for chain in zip(seq, shares[300], shares[100], shares[10]):
        assert all(a <= b + 1e-6 for a, b in zip(chain, chain[1:])), chain
    bounded = BoundedNbest(300)
    skipped = []
    for thr in np.quantile(shares[300], [0.1, 0.3, 0.5, 0.7, 0.9]):
        got = bounded.posteriors(lp, lengths, seq, thr)
        decided = [s >= thr if p is None else p >= thr for s, p in zip(seq, got)]
        assert decided == [p >= thr for p in shares[300]]
        assert all(p == pytest.approx(e) for p, e in zip(got, shares[300]) if p is not None)
        skipped.append(sum(p is None for p in got))
    assert 0 < sum(skipped) and min(skipped) < 24  # the bounds decide some, not all


def test_online_nbest_with_bounds_equals_it_without():
    model = blank_heavy(tiny_model().eval(), bias=5.0)  # confident enough for the bounds to decide some
    x, xl, _, _ = batch()
    plain, bounded = (torch_engine(model, nbest_size=100, nbest_bounds=b) for b in (False, True))
    every = decode_online(model, x, xl, "nbest", 2.0, engine=plain)  # never stops: the posterior at exits 2, 4
    values = sorted(r["scores"][layer]["nbest_posterior"] for r in every for layer in (2, 4))
    without_beam = 0
    for thr in values:
        want = decode_online(model, x, xl, "nbest", thr, engine=plain)
        got = decode_online(model, x, xl, "nbest", thr, engine=bounded)
        assert [(r["exit"], r["ids"]) for r in got] == [(r["exit"], r["ids"]) for r in want]
        without_beam += sum("nbest_posterior" not in s for r in got for layer, s in r["scores"].items() if layer < 6)
    assert without_beam > 0


def test_agree_budget_seqpost_and_learned_rules():
    assert disagreement([1, 2, 3], [1, 2, 3]) == 0.0 and disagreement([1, 2, 3], None) == 1.0
    assert disagreement([1, 2, 3, 4], [1, 2, 4]) == pytest.approx(1 / 4)
    assert stops_at("agree", 0.25, 4, {"disagreement": 0.25}, 12)
    assert not stops_at("agree", 0.2, 4, {"disagreement": 0.25}, 12)
    assert stops_at("seqpost", 0.9, 4, {"seq_posterior": 0.95}, 12)
    assert not stops_at("seqpost", 0.9, 4, {"seq_posterior": 0.5}, 12)
    assert stops_at("learned", 0.7, 4, {"p_as_good": 0.7}, 12)
    exits = [2, 4, 6, 8, 10, 12]
    assert last_exit(exits, "budget", 6) == 6 and last_exit(exits, "entropy", 0.1, max_layers=8) == 8
    assert last_exit(exits, "budget", 8, max_layers=4) == 4 and last_exit(exits, "entropy", 0.1) == 12
    for bad in ({"policy": "budget", "threshold": 7}, {"max_layers": 0}, {"max_layers": 9}):
        with pytest.raises(UserError, match="not an exit layer"):
            last_exit(exits, **{"policy": "entropy", "threshold": 0.1, **bad})
    assert not stops_at("budget", 7, 4, {}, 6) and stops_at("budget", 7, 6, {}, 6)


def test_a_layer_budget_caps_every_policy_online():
    model = tiny_model().eval()
    calls = count_layer_calls(model)
    x, xl, _, _ = batch()
    res = decode_online(model, x, xl, "seqpost", 2.0, max_layers=4)  # never confident: the budget answers
    assert [r["exit"] for r in res] == [4, 4, 4] and max(calls) == 3
    calls.clear()
    res = decode_online(model, x, xl, "budget", 2)
    assert [r["exit"] for r in res] == [2, 2, 2] and calls == [0, 1]


NEVER = {"entropy": -1.0, "maxprob": 2.0, "nbest": 2.0, "seqpost": 2.0, "agree": -1.0, "learned": 2.0}


def hand_classifier():
    """Weights by hand: confident (high maxprob, high sequence posterior) exits are 'as good'."""
    w = np.zeros(len(FEATURES) + 1)
    w[FEATURES.index("maxprob")], w[FEATURES.index("log_seq_posterior")], w[FEATURES.index("depth")] = 2.0, 1.0, 1.0
    return ExitClassifier(w, np.zeros(len(FEATURES)), np.ones(len(FEATURES)), [2, 4, 6])


def blank_heavy(model, bias=2.0):
    """Most frames blank, as in a trained model, so that adjacent exits' short hypotheses can
    agree (an untrained model's long random hypotheses never do)."""
    with torch.no_grad():
        for head in model.ctc_heads:
            [lin for lin in head.modules() if isinstance(lin, torch.nn.Linear)][0].bias[0] = bias
    return model


@pytest.mark.parametrize("policy", ONLINE_POLICIES)
def test_batched_equals_one_by_one_for_every_policy(policy):
    model = blank_heavy(tiny_model().eval()) if policy == "agree" else tiny_model().eval()
    x, xl, _, _ = batch()
    search = torch_engine(model, nbest_size=10, classifier=hand_classifier())
    if policy in RULES:
        field = RULES[policy].score
        full = decode_online(model, x, xl, policy, NEVER[policy], engine=search)
        assert [r["exit"] for r in full] == [6, 6, 6]
        layer = 4 if policy == "agree" else 2  # agree cannot stop at the first exit
        values = sorted({r["scores"][layer][field] for r in full})
        assert len(values) > 1, "the tiny model should give distinct scores"
        thr = (values[0] + values[1]) / 2  # splits the batch at that exit
    else:
        thr = 4
    together = decode_online(model, x, xl, policy, thr, engine=search)
    for i in range(3):
        alone = decode_online(model, x[i:i + 1, : xl[i]], xl[i:i + 1], policy, thr, engine=search)[0]
        assert alone["exit"] == together[i]["exit"] and alone["ids"] == together[i]["ids"]
        for layer, s in alone["scores"].items():
            assert s == pytest.approx(together[i]["scores"][layer], rel=1e-4, abs=1e-5)
    if policy in RULES:
        assert len({r["exit"] for r in together}) > 1  # the threshold split the batch


def test_agree_stops_where_the_hypothesis_stops_changing():
    model = blank_heavy(tiny_model().eval())
    x, xl, _, _ = batch()
    res = decode_online(model, x, xl, "agree", 0.0)
    for r in res:
        assert r["scores"][2]["disagreement"] == 1.0  # nothing below the first exit
        # the last exit (6) answers anyway: nothing is scored there
        assert r["exit"] == (4 if r["scores"][4]["disagreement"] == 0.0 else 6) and r["scores"].get(6, {}) == {}


def synthetic_rows(n=400, seed=0):
    """Exits whose 'as good' label depends on maxprob: a learnable rule, speakers in 8 groups."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ent = rng.uniform(0, 1)
        s = {"entropy": ent, "maxprob": 1 - ent, "seq_posterior": rng.uniform(0.01, 1), "blank_share": 0.5,
             "disagreement": rng.uniform(0, 1), "frames": 20.0}
        rows.append((s, int(rng.choice([2, 4, 6])), bool(rng.uniform() < s["maxprob"]), f"spk{i % 8}"))
    return rows


def test_classifier_fit_predicts_the_rule_and_survives_a_round_trip(tmp_path):
    clf = ExitClassifier.fit(synthetic_rows(), [2, 4, 6])
    confident = {"entropy": 0.05, "maxprob": 0.95, "seq_posterior": 0.5, "blank_share": 0.5, "disagreement": 0.5,
                 "frames": 20.0}
    unsure = {**confident, "entropy": 0.95, "maxprob": 0.05}
    assert clf.predict_one(confident, 2) > 0.7 > 0.3 > clf.predict_one(unsure, 2)
    assert clf.info["folds"] == 5 and clf.info["rows"] < 400  # last-exit rows are left out
    assert min(clf.info["cv_log_loss"].values()) < clf.info["prior_log_loss"]
    path = tmp_path / "exit_classifier.json"
    path.write_text(clf.to_json())
    back = ExitClassifier.load(path)
    assert back.predict_one(unsure, 4) == pytest.approx(clf.predict_one(unsure, 4))
    path.write_text(clf.to_json().replace('"maxprob"', '"maxprobability"'))
    with pytest.raises(UserError, match="fit it again"):
        ExitClassifier.load(path)


def test_thresholds_are_checked_against_their_meaning():
    from ee_asr.exits.policies import check_threshold

    for policy, bad in (("entropy", -1.0), ("maxprob", 1.5), ("nbest", 2.0), ("agree", -0.1), ("fixed", 0.0),
                        ("fixed", 6.5), ("budget", -2.0), ("seqpost", float("nan"))):
        with pytest.raises(UserError, match=policy):
            check_threshold(policy, bad)
    assert check_threshold("entropy", 0.0) == 0.0 and check_threshold("fixed", 6.0) == 6.0
    with pytest.raises(UserError, match="'maxprob:0.9,1.2'"):
        parse_grid(["maxprob:0.9,1.2"])
    with pytest.raises(UserError, match="past the last exit"):
        last_exit([2, 4, 6], "fixed", 99)
