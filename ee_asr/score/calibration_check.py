"""Does a calibrated threshold keep its promise? Two checks of score/calibration.py.

- Resampling, on one set: split it in random halves, calibrate on one half, measure the WER
  increase over the last exit on the other; the share of splits where it exceeds ε should be
  at most δ. Or across sets (dev -> test): calibrate on a random half of one, measure on a
  random half of the other. Beside it: the calibrated policy's mean compute, and the least compute any
  threshold of the policy reaches within ε on the whole set chosen in hindsight (the bound
  that calibration pays a margin against).
- Promised against achieved, on other sets: the thresholds of a calibration.json applied to
  each test set (stage 6), where a shift between calibration and test breaks exchangeability.
Also the readers that turn an exits.jsonl or the paper authors' results dir into ExitTables.
"""

from pathlib import Path

import numpy as np

from ee_asr.common.errors import UserError
from ee_asr.exits.exit_classifier import ExitClassifier, add_predictions
from ee_asr.exits.policies import RULES
from ee_asr.score.calibration import CALIBRATION_FILE, ExitTable, PolicyCurve, read_calibration, set_name
from ee_asr.score.sweep_input import read_sweep_records
from ee_asr.score.wav2vec2_ee_files import read_records

PAPER_SETS = (("test_clean", 1, 2620), ("test_other", 2621, 5559))  # line ranges of their files


def read_tables(path, sets=PAPER_SETS, decoder="greedy", vocab_size=32, classifier=None):
    """{set name: ExitTable} from an exits.jsonl (one set, named by its decode dir) or from the
    paper authors' results dir (`sets`: (name, first line, last line); `decoder` greedy or lm_beam)."""
    path = Path(path)
    if path.is_dir():
        by_set = read_records(path, decoder, sets, vocab_size)
        return {name: ExitTable.from_records(recs, name, f"{path} ({name})") for name, recs in by_set.items()}
    if not path.is_file():
        raise UserError(f"{path}: no such file (an exits.jsonl, or a wav2vec2-ee results dir)")
    records = read_sweep_records(path)
    if classifier:
        add_predictions(records, ExitClassifier.load(classifier))
    return {set_name(path): ExitTable.from_records(records, set_name(path), str(path))}


def resampling_check(table, policy, max_wer_increases, confidence=0.9, splits=200, seed=0, thresholds=None,
                     test_table=None):
    """One row per ε: calibrate on a random half, check on the other, `splits` times. With
    `test_table` (another set: a shift), check on a random half of it instead; the hindsight
    threshold is then the test set's."""
    curve = PolicyCurve(table, policy, thresholds)
    test_curve = curve
    if test_table is not None:
        if test_table.exits != table.exits:
            raise UserError(f"{test_table.name} has exits {test_table.exits}, {table.name} {table.exits}: "
                            "a calibration applies only to the same exits")
        test_curve = PolicyCurve(test_table, policy, curve.thresholds)
    rng = np.random.default_rng(seed)
    n, m, delta = len(table), len(test_curve.table), 1 - confidence
    halves = [(rng.permutation(n), rng.permutation(m)) for _ in range(splits)]
    rows = []
    for eps in max_wer_increases:
        achieved, compute, fallback = [], [], 0
        for perm, test_perm in halves:
            calib, test = perm[: n // 2], (perm[n // 2:] if test_table is None else test_perm[: m // 2])
            k, _, _ = curve.certify(calib, eps, delta, rng)
            fallback += k == 0
            p = test_curve.point(test, k - 1)
            achieved.append(p["wer_increase"])
            compute.append(p["compute_ratio"])
        achieved = np.array(achieved)
        inc, ratio = test_curve.increases()
        keep = inc <= eps + 1e-12
        best = int(np.argmin(np.where(keep, ratio, np.inf))) if keep.any() else None
        name = table.name if test_table is None else f"{table.name} -> {test_table.name}"
        rows.append({"set": name, "policy": policy, "max_wer_increase": eps, "confidence": confidence,
                     "splits": splits, "violation_share": float((achieved > eps + 1e-12).mean()),
                     "achieved_mean": float(achieved.mean()), "achieved_max": float(achieved.max()),
                     "compute_mean": float(np.mean(compute)), "fallback_share": fallback / splits,
                     "hindsight_threshold": curve.thresholds[best] if best is not None else None,
                     "hindsight_compute": float(ratio[best]) if best is not None else 1.0,
                     "hindsight_increase": float(inc[best]) if best is not None else 0.0})
    return rows


def markdown(header, rows):
    """A markdown table of header cells and rows of cells."""
    return "\n".join(["|" + "|".join(header) + "|", "|---" * len(header) + "|",
                      *("|" + "|".join(cells) + "|" for cells in rows)]) + "\n"


def resampling_table(rows):
    def cells(r):
        t = "-" if r["hindsight_threshold"] is None else f"{r['hindsight_threshold']:.4g}"
        return [r["set"], r["policy"], f"{r['max_wer_increase']:g}",
                f"{r['violation_share']:.3f} ({1 - r['confidence']:.2g})",
                f"{r['achieved_mean']:+.2f} / {r['achieved_max']:+.2f}", f"{r['compute_mean']:.3f}",
                f"{t}, {r['hindsight_compute']:.3f} ({r['hindsight_increase']:+.2f})"]
    return markdown(["set", "policy", "ε", "splits over ε (δ)", "achieved increase mean / max",
                     "calibrated compute (mean)", "hindsight on the whole (test) set: threshold, compute (increase)"],
                    map(cells, rows))


def promised_vs_achieved(document, tables):
    """Each calibration entry applied to each test table: one row each."""
    rows = []
    for e in document["entries"]:
        for table in tables.values():
            field = RULES[e["policy"]].score if e["policy"] in RULES else None
            if field is not None and field not in table.scores:
                continue  # a score this decode did not record (p_as_good without the classifier): not checkable
            curve = PolicyCurve(table, e["policy"], [e["threshold"]] if e["threshold"] is not None else [0.0])
            p = curve.point(np.arange(len(table)), 0 if e["threshold"] is not None else -1)
            rows.append({"set": table.name, "policy": e["policy"], "threshold": e["threshold"],
                         "max_wer_increase": e["max_wer_increase"], "confidence": e["confidence"],
                         "calibration_set": e["calibration_set"], "calibration_increase": e["wer_increase"],
                         "calibration_compute": e["compute_ratio"], **p,
                         "kept": p["wer_increase"] <= e["max_wer_increase"] + 1e-12})
    return rows


def promised_table(rows):
    def cells(r):
        t = "last exit" if r["threshold"] is None else f"{r['threshold']:.4g}"
        return [r["set"], r["policy"], t, f"{r['max_wer_increase']:g} ({r['confidence']:g})",
                f"{r['calibration_set']}: {r['calibration_increase']:+.2f}, {r['calibration_compute']:.3f}",
                f"{r['wer_increase']:+.2f}, {r['compute_ratio']:.3f}", f"{r['wer']:.2f} ({r['last_exit_wer']:.2f})",
                "yes" if r["kept"] else "**no**"]
    return markdown(["test set", "policy", "threshold", "promised: increase <= ε (confidence)",
                     "calibration set: increase, compute", "achieved: increase, compute", "WER (last exit)", "kept"],
                    map(cells, rows))


def calibration_section(exp, decode_dirs):
    """Stage 6's "promised against achieved" section when `<exp>/calibration.json` exists."""
    path = Path(exp) / CALIBRATION_FILE
    if not path.is_file():
        return ""
    document = read_calibration(path)
    source_lm = document["source"].rstrip("/").endswith("_lm/exits.jsonl")
    classifier = Path(exp) / "exit_classifier.json"
    tables = {}
    for d in decode_dirs:
        if Path(d).name.endswith("_lm") == source_lm:  # thresholds apply to the decoder they were calibrated on
            tables.update(read_tables(Path(d) / "exits.jsonl",
                                      classifier=classifier if classifier.is_file() else None))
    if not tables:
        return ""
    return (f"\n## Calibrated thresholds: promised against achieved\n\nFrom `{path}` "
            f"(calibrated on {document['source']}). {document['assumptions']}\n\n"
            + promised_table(promised_vs_achieved(document, tables)))

