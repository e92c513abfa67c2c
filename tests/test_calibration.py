"""Calibrated exit thresholds (score/calibration.py): the least compute within +ε WER of the last
exit, promised with confidence 1 - δ, and the checks that the promise holds."""

import json
import math

import numpy as np
import pytest

from conftest import SHARED, run_py
from ee_asr.common.errors import UserError
from ee_asr.score.calibration import ExitTable, PolicyCurve, calibrate, calibrated_threshold
from ee_asr.score.calibration_check import calibration_section, read_tables, resampling_check
from ee_asr.score.risk_control import betting_p_values, fixed_sequence

PAPER = SHARED / "data" / "paper_w2v_ee_scores"


def two_exit_records(scores, extra_errors, words=10, last_errors=1):
    """Records at exits 6 and 12: exit 6 makes `extra_errors` more than the last exit."""
    out = []
    for i, (s, d) in enumerate(zip(scores, extra_errors)):
        for layer, errors, entropy in ((6, last_errors + d, s), (12, last_errors, s / 2)):
            out.append({"utt": f"u{i:04d}", "exit": layer, "ref_words": words, "errors": int(errors),
                        "entropy": float(entropy)})
    return out


def table_of(records, name="dev"):
    return ExitTable.from_records(records, name)


def test_betting_p_values_reject_a_clearly_negative_mean_but_not_a_positive_one():
    rng = np.random.default_rng(0)
    losses = np.stack([rng.uniform(-1, 0.5, 500), rng.uniform(-0.5, 1, 500)], axis=1)
    p = betting_p_values(losses, bound=1.0)
    assert p[0] < 1e-3 and p[1] == 1.0
    with pytest.raises(ValueError, match="exceeds the bound"):
        betting_p_values(losses, bound=0.5)


def test_fixed_sequence_stops_at_the_first_hypothesis_not_rejected():
    assert fixed_sequence([0.01, 0.05, 0.2, 0.01], 0.1) == 2
    assert fixed_sequence([0.01, 0.02], 0.1) == 2
    assert fixed_sequence([0.5, 0.01], 0.1) == 0


def test_a_policy_exact_up_to_one_threshold_is_calibrated_to_it():
    # half the utterances are confident (0.1) and lose nothing early; the others (0.5) lose 5 errors
    n = 400
    scores = [0.1 if i % 2 else 0.5 for i in range(n)]
    extra = [0 if s < 0.3 else 5 for s in scores]
    table = table_of(two_exit_records(scores, extra))
    e = calibrate(table, "entropy", 1.0, 0.9, thresholds=[0.6, 0.05, 0.2, 0.5])
    assert e["threshold"] == 0.5 and e["wer_increase"] == 0.0
    assert e["compute_ratio"] == pytest.approx(0.75) and e["certified"] == 3
    # nothing certified when every early exit loses: the last exit answers
    bad = table_of(two_exit_records(scores, [5] * n))
    e = calibrate(bad, "entropy", 1.0, 0.9, thresholds=[0.05, 0.2, 0.5, 0.6])
    assert e["threshold"] == 0.05 and e["wer_increase"] == 0.0  # 0.05 stops no one
    e = calibrate(bad, "entropy", 1.0, 0.9, thresholds=[0.2, 0.5, 0.6])
    assert e["threshold"] is None and e["compute_ratio"] == 1.0 and e["wer_increase"] == 0.0


def test_the_promise_holds_in_at_least_1_minus_delta_of_simulated_calibrations():
    # score s ~ U(0,1); stopping at exit 6 adds one error with probability s; 10 words each.
    # True WER increase at threshold t: 100 * E[d 1{s < t}] / 10 = 5 t^2 points; ε = 1 -> t* = sqrt(0.2)
    rng = np.random.default_rng(1)
    t_star, chosen = math.sqrt(0.2), []
    grid = list(np.linspace(0.01, 1.0, 100))
    for _ in range(100):
        s = rng.uniform(0, 1, 400)
        d = (rng.uniform(0, 1, 400) < s).astype(int)
        e = calibrate(table_of(two_exit_records(s, d)), "entropy", 1.0, 0.9, thresholds=grid,
                      seed=int(rng.integers(1 << 30)))
        chosen.append(e["threshold"] or 0.0)
    chosen = np.array(chosen)
    assert (chosen > t_star).mean() <= 0.1
    assert np.median(chosen) > 0.25  # and it does save compute, not only answer at the last exit


def test_fixed_exits_calibrate_to_the_cheapest_that_keeps_the_promise():
    records = []
    rng = np.random.default_rng(2)
    for i in range(300):  # exit 2 adds 3 errors, 4 adds one error to a fifth of utterances, 6 none
        for layer, extra in ((2, 3), (4, int(rng.uniform() < 0.2)), (6, 0)):
            records.append({"utt": f"u{i}", "exit": layer, "ref_words": 20, "errors": 2 + extra})
    table = table_of(records)
    assert calibrate(table, "fixed", 2.0)["threshold"] == 4.0  # +1 point expected
    assert calibrate(table, "fixed", 0.5)["threshold"] is None  # exit 4 is +1: only the last exit keeps 0.5
    rows = resampling_check(table, "fixed", [2.0], splits=20)
    assert rows[0]["violation_share"] == 0.0 and rows[0]["hindsight_threshold"] == 4.0


def test_a_score_missing_from_the_records_is_named():
    table = table_of([{"utt": "a", "exit": e, "ref_words": 3, "errors": 0} for e in (2, 4)], name="dev_x")
    with pytest.raises(UserError, match="'nbest_posterior' score.*dev_x"):
        PolicyCurve(table, "nbest")


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_the_cli_writes_calibration_json_into_the_experiment_and_the_api_reads_it(tmp_path):
    rng = np.random.default_rng(3)
    s = rng.uniform(0, 1, 300)
    exp = tmp_path / "exp" / "tag"
    (exp / "config.yaml").parent.mkdir(parents=True)
    (exp / "config.yaml").write_text("model: ctc_ee\n")
    scores = exp / "calibration_data" / "dev" / "exits.jsonl"
    write_jsonl(scores, two_exit_records(s, (rng.uniform(0, 1, 300) < s).astype(int)))
    out = run_py("ee_asr.bin.calibrate_exits", str(scores), "--policy", "entropy", "fixed",
                 "--max-wer-increase", "1", "2").stdout
    assert "|entropy|1|" in out
    doc = json.loads((exp / "calibration.json").read_text())
    assert {(e["policy"], e["max_wer_increase"]) for e in doc["entries"]} == {
        ("entropy", 1.0), ("entropy", 2.0), ("fixed", 1.0), ("fixed", 2.0)}
    assert "exchangeable" in doc["assumptions"] and doc["entries"][0]["calibration_set"] == "dev"
    t1 = calibrated_threshold(exp / "calibration.json", "entropy", 1.0)
    t2 = calibrated_threshold(exp / "calibration.json", "entropy", 2.0)
    assert 0 < t1 <= t2  # a looser promise never costs more compute
    with pytest.raises(UserError, match=r"calibration.json: no calibration for policy 'maxprob'"):
        calibrated_threshold(exp / "calibration.json", "maxprob", 1.0)

    # promised against achieved on another set, from the CLI and as stage 6's section
    test = exp / "decode_test" / "exits.jsonl"
    s2 = rng.uniform(0, 1, 300)
    write_jsonl(test, two_exit_records(s2, (rng.uniform(0, 1, 300) < s2).astype(int)))
    out = run_py("ee_asr.bin.check_calibration", str(test), "--calibration", str(exp / "calibration.json")).stdout
    assert out.count("|test|") == 4 and "calibration set: increase" in out
    section = calibration_section(exp, [test.parent])
    assert "promised against achieved" in section and section.count("|test|") == 4


def test_cli_errors_are_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "decode_dev" / "exits.jsonl"
    bad.parent.mkdir()
    bad.write_text('{"utt": "a", "exit": 2, "ref_words": 3}\n')
    proc = run_py("ee_asr.bin.calibrate_exits", str(bad), "--policy", "entropy", "--max-wer-increase", "1",
                  check=False)
    assert proc.returncode == 2 and f"{bad}:1: no 'errors' field" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_py("ee_asr.bin.calibrate_exits", str(tmp_path / "nope.jsonl"), "--policy", "entropy",
                  "--max-wer-increase", "1", check=False)
    assert proc.returncode == 2 and "nope.jsonl: no such file" in proc.stderr
    proc = run_py("ee_asr.bin.check_calibration", str(bad), "--calibration", str(tmp_path / "c.json"), check=False)
    assert proc.returncode == 2 and "c.json: no such calibration file" in proc.stderr
    proc = run_py("ee_asr.bin.check_calibration", str(bad), check=False)
    assert proc.returncode == 2 and "either --calibration FILE" in proc.stderr


@pytest.mark.skipif(not PAPER.is_dir(), reason=f"{PAPER} absent: the paper authors' files live only in ../shared")
def test_on_the_paper_authors_test_clean_calibrated_entropy_beats_the_fixed_exits():
    tables = read_tables(PAPER)
    clean = tables["test_clean"]
    entropy, fixed = calibrate(clean, "entropy", 1.0), calibrate(clean, "fixed", 1.0)
    assert fixed["threshold"] == 10.0 and fixed["wer_increase"] == pytest.approx(0.11, abs=0.01)
    assert entropy["compute_ratio"] <= 0.75 and entropy["wer_increase"] <= 1.0
    rows = resampling_check(clean, "entropy", [1.0], splits=20)
    assert rows[0]["violation_share"] <= 0.1 and rows[0]["hindsight_compute"] == pytest.approx(0.69, abs=0.01)


def test_a_shifted_test_set_breaks_the_promise_and_the_check_says_so():
    rng = np.random.default_rng(4)
    s_dev, s_test = rng.uniform(0, 1, 400), rng.uniform(0, 1, 400)
    dev = table_of(two_exit_records(s_dev, (rng.uniform(0, 1, 400) < s_dev).astype(int)), "dev")
    # the test set loses three times as many errors at exit 6 at every score: a fixed exit cannot know
    test = table_of(two_exit_records(s_test, 3 * (rng.uniform(0, 1, 400) < s_test).astype(int)), "test")
    same = resampling_check(dev, "fixed", [8.0], splits=20)[0]
    shifted = resampling_check(dev, "fixed", [8.0], splits=20, test_table=test)[0]
    assert same["violation_share"] <= 0.1 and shifted["violation_share"] > 0.5
    assert shifted["set"] == "dev -> test"
    other_exits = table_of([{"utt": "a", "exit": e, "ref_words": 3, "errors": 0, "entropy": 0.1} for e in (3, 6)])
    with pytest.raises(UserError, match="same exits"):
        resampling_check(dev, "entropy", [1.0], splits=2, test_table=other_exits)


@pytest.mark.parametrize("policy, thresholds", [("entropy", [0.2, 0.5]), ("maxprob", [0.3, 0.8]),
                                                 ("agree", [0.0, 0.4]), ("fixed", [4, 5]), ("budget", [4, 6])])
def test_the_vectorised_exit_choice_is_the_sweeps_rule(policy, thresholds):
    from ee_asr.score.sweep import sweep

    rng = np.random.default_rng(5)
    records = [{"utt": f"u{i}", "exit": e, "ref_words": 5, "errors": int(rng.integers(0, 4)),
                "entropy": float(rng.uniform()), "maxprob": float(rng.uniform()),
                "disagreement": float(rng.choice([0.0, 0.4, 1.0]))} for i in range(60) for e in (2, 4, 6, 8)]
    curve = PolicyCurve(table_of(records), policy, thresholds)
    rows = np.arange(60)
    for point in sweep(records, policy, thresholds):
        k = curve.thresholds.index(point["threshold"])
        mine = curve.point(rows, k)
        assert mine["wer"] == pytest.approx(point["wer"]) and mine["mean_exit"] == pytest.approx(point["mean_exit"])
