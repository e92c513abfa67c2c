"""Paired bootstrap over test utterances for per-exit WER (score/significance.py)."""

import numpy as np
import pytest

from ee_asr.common.errors import UserError
from ee_asr.score.significance import bootstrap_wers, exit_significance, significance_table


def records(errors_by_exit, words):
    """exits.jsonl-like records: errors_by_exit {layer: [errors per utterance]}."""
    return [{"utt": f"u{i:03d}", "exit": layer, "errors": e, "ref_words": words[i]}
            for layer, errs in errors_by_exit.items() for i, e in enumerate(errs)]


def test_an_exit_better_on_every_utterance_is_better_in_every_draw():
    rng = np.random.default_rng(1)
    words = rng.integers(3, 12, 200).tolist()
    low = rng.integers(1, 3, 200).tolist()
    rows = exit_significance(records({2: [e + 1 for e in low], 4: low}, words), resamples=300)
    assert rows[1]["p_worse"] == 0.0
    assert rows[1]["change_interval"][1] < 0
    assert rows[1]["change"] == pytest.approx(-100.0 * 200 / sum(words))


def test_identical_exits_never_differ_and_intervals_hold_the_estimate():
    rng = np.random.default_rng(2)
    words = rng.integers(3, 12, 100).tolist()
    errs = rng.integers(0, 4, 100).tolist()
    rows = exit_significance(records({6: errs, 8: errs}, words), resamples=300)
    assert rows[1]["change_interval"] == (0.0, 0.0) and rows[1]["p_worse"] == 0.0
    lo, hi = rows[0]["interval"]
    assert lo < rows[0]["wer"] < hi


def test_a_small_change_on_few_utterances_spans_zero():
    # exit 4 fixes one word in one of 50 utterances and breaks one in another: a coin toss
    words = [8] * 50
    e2 = [1] * 50
    e4 = [0] + [1] * 48 + [3]
    rows = exit_significance(records({2: e2, 4: e4}, words), resamples=500)
    clo, chi = rows[1]["change_interval"]
    assert clo < 0 < chi and 0.1 < rows[1]["p_worse"] < 0.9


def test_draws_are_paired_and_reproducible():
    errors = np.array([[2.0, 1.0], [0.0, 0.0], [5.0, 4.0]])
    words = np.array([10.0, 4.0, 20.0])
    a, b = bootstrap_wers(errors, words, 250, seed=7), bootstrap_wers(errors, words, 250, seed=7)
    assert np.array_equal(a, b) and a.shape == (250, 2)
    assert (a[:, 1] <= a[:, 0]).all()  # the second exit is no worse on any utterance, so in no draw


def test_missing_utterance_at_an_exit_is_named():
    recs = records({2: [1, 0], 4: [0, 0]}, [3, 3])
    recs = [r for r in recs if not (r["exit"] == 4 and r["utt"] == "u001")]
    with pytest.raises(UserError, match="u001 has no record at exit 4"):
        exit_significance(recs)


def test_table_has_a_row_per_exit():
    text = significance_table(records({2: [2, 1], 4: [1, 1], 6: [1, 0]}, [4, 4]), resamples=50)
    lines = text.strip().splitlines()
    assert len(lines) == 5 and lines[2].startswith("|exit2|37.50|") and lines[4].startswith("|exit6|12.50|")
