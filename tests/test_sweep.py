"""The offline sweep: its input checks (file and line named), the .json/.md pair, properties
that hold for any records (hypothesis), and the equal-compute comparison of stage 6."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_py
from ee_asr.common.errors import UserError
from ee_asr.score.equal_compute import FixedLine, compare
from ee_asr.score.significance import bootstrap_counts
from ee_asr.score.sweep import group_by_utterance, sweep
from ee_asr.score.sweep_input import read_sweep_records

GOOD = {"utt": "a", "exit": 2, "ref_words": 4, "errors": 1, "entropy": 0.1}


def write(tmp_path, rows):
    f = tmp_path / "exits.jsonl"
    f.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return f


@pytest.mark.parametrize("rows,message", [
    ([], "exits.jsonl: no records"),
    ([GOOD, {**GOOD, "errors": 2}], "exits.jsonl:2: utterance 'a' at exit 2 again (first on line 1)"),
    ([{**GOOD, "errors": -1}], "exits.jsonl:1: 'errors' must be a non-negative integer, got -1"),
    ([{**GOOD, "ref_words": 2.5}], "exits.jsonl:1: 'ref_words' must be a non-negative integer, got 2.5"),
    ([GOOD, {k: v for k, v in GOOD.items() if k != "errors"}], "exits.jsonl:2: no 'errors' field"),
    ([GOOD, "{not json"], "exits.jsonl:2: not valid JSON"),
    ([GOOD, "[1, 2]"], "exits.jsonl:2: not a JSON object"),
    ([{**GOOD, "errors": "3"}], "'errors' must be a non-negative integer, got '3'"),
])
def test_bad_sweep_input_names_file_and_line(tmp_path, rows, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        read_sweep_records(write(tmp_path, rows))


def test_sweep_cli_reports_bad_lines_and_writes_nothing(tmp_path):
    f = write(tmp_path, [GOOD, {**GOOD, "exit": 4}, {**GOOD, "utt": "b"}])
    bad = run_py("ee_asr.bin.sweep", str(f), "--policy", "entropy", "--threshold", "0.2", check=False)
    assert bad.returncode == 2 and "utterance 'b' has exits [2], expected [2, 4]" in bad.stderr
    assert "exits.jsonl:3" in bad.stderr and not list(tmp_path.glob("sweep_*"))
    f = write(tmp_path, [GOOD, {**GOOD, "exit": 4, "errors": 0, "entropy": 0.3}])
    ok = run_py("ee_asr.bin.sweep", str(f), "--policy", "entropy", "--threshold", "0.2", "--output",
                str(tmp_path / "s"))
    assert "|entropy|0.2|25.00|2.00|0.500|" in ok.stdout
    assert json.loads((tmp_path / "s.json").read_text())[0]["mean_exit"] == 2 and (tmp_path / "s.md").is_file()


EXITS = [2, 4, 6]
utterance = st.fixed_dictionaries({
    "ref_words": st.integers(1, 12),
    "errors": st.lists(st.integers(0, 8), min_size=3, max_size=3),
    "entropy": st.lists(st.floats(0, 1), min_size=3, max_size=3),
    "seq_posterior": st.lists(st.floats(0, 1), min_size=3, max_size=3),
})


def make_records(utts):
    return [{"utt": f"u{i}", "exit": e, "ref_words": u["ref_words"], "errors": u["errors"][k],
             "entropy": u["entropy"][k], "seq_posterior": u["seq_posterior"][k]}
            for i, u in enumerate(utts) for k, e in enumerate(EXITS)]


@settings(max_examples=60, deadline=None)
@given(st.lists(utterance, min_size=1, max_size=10))
def test_a_fixed_exit_sweep_is_the_per_exit_wer(utts):
    records = make_records(utts)
    words = sum(u["ref_words"] for u in utts)
    for k, point in enumerate(sweep(records, "fixed")):
        assert point["mean_exit"] == EXITS[k]
        assert point["wer"] == pytest.approx(100.0 * sum(u["errors"][k] for u in utts) / words)
    (oracle,) = sweep(records, "oracle")
    assert oracle["wer"] <= sweep(records, "fixed", [6])[0]["wer"] + 1e-9


@settings(max_examples=60, deadline=None)
@given(st.lists(utterance, min_size=1, max_size=10), st.lists(st.floats(0, 1), min_size=2, max_size=6),
       st.sampled_from([None, 2, 4, 6]))
def test_thresholds_move_the_mean_exit_monotonically(utts, thresholds, max_layers):
    records, thresholds = make_records(utts), sorted(thresholds)
    ent = [p["mean_exit"] for p in sweep(records, "entropy", thresholds, max_layers)]  # stops when below
    seq = [p["mean_exit"] for p in sweep(records, "seqpost", thresholds, max_layers)]  # stops when at least
    assert all(a >= b for a, b in zip(ent, ent[1:])) and all(a <= b for a, b in zip(seq, seq[1:]))
    if max_layers is not None:
        assert max(ent + seq) <= max(e for e in EXITS if e <= max_layers)


def test_equal_compute_interpolates_the_fixed_line_per_utterance():
    records = [{"utt": u, "exit": e, "ref_words": 10, "errors": err}
               for u, errs in (("a", (4, 2, 2)), ("b", (2, 2, 0))) for e, err in zip(EXITS, errs)]
    line = FixedLine(*group_by_utterance(records))
    assert line.wer_at(2) == 30.0 and line.wer_at(3) == pytest.approx(25.0) and line.wer_at(5) == pytest.approx(15.0)
    counts = bootstrap_counts(2, 200)
    # a at exit 4 (2 errors), b at exit 2 (2 errors): mean exit 3, WER 20 against the line's 25
    c = compare(line, {"a": 4, "b": 2}, counts)
    assert c["mean_exit"] == 3 and c["wer"] == 20.0 and c["difference"] == pytest.approx(-5.0)
    assert c["interval"][0] <= -5.0 <= c["interval"][1] + 1e-9 and c["interval"][1] <= 0
    assert compare(line, {"a": 2, "b": 2}, counts)["difference"] == 0.0  # a fixed exit is on the line
    assert np.isclose(line.time_at(3, {2: 0.2, 4: 0.4, 6: 0.6}), 0.3)


def test_a_policy_is_compared_with_another_policys_curve_at_equal_mean_exit():
    from ee_asr.score.tradeoff import versus
    # exits 2/4/6; 'a' is only right at exit 6, 'b' already at exit 2. A good score (seq_posterior)
    # stops b early and a late; a bad one (entropy) does the opposite.
    records = [{"utt": u, "exit": e, "ref_words": 10, "errors": err, "seq_posterior": sp, "entropy": ent}
               for u, rows in (("a", ((5, 0.1, 0.01), (5, 0.2, 0.01), (0, 0.9, 0.01))),
                               ("b", ((0, 0.9, 0.9), (0, 0.9, 0.9), (0, 0.9, 0.9))))
               for e, (err, sp, ent) in zip(EXITS, rows)]
    curves = {"seqpost": sweep(records, "seqpost", [0.5], with_choices=True),
              "entropy": sweep(records, "entropy", [0.005, 0.05, 1.0], with_choices=True)}
    assert [p["mean_exit"] for p in curves["entropy"]] == [6, 4, 2]
    (c,) = versus(records, curves, "seqpost", "entropy", resamples=200)
    # seqpost: a at 6, b at 2 -> mean exit 4, WER 0; entropy at mean exit 4 sends both to 4: WER 25
    assert c["mean_exit"] == 4 and c["wer"] == 0.0 and c["fixed_wer"] == pytest.approx(25.0)
    assert c["difference"] == pytest.approx(-25.0)
    assert versus(records, curves, "nbest", "entropy") == []
