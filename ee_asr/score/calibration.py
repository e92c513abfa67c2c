"""Calibrated exit thresholds: the least compute whose WER increase over the last exit stays
within ε with confidence 1 - δ, chosen on a calibration set by Learn-then-Test (risk_control.py).

The risk. For a policy at threshold λ, utterance i answers at its chosen exit with e_i(λ) word
errors; the last exit makes e_i(last); it has w_i reference words. The controlled risk is
R(λ) = E[e(λ) - e(last)] / E[w]: the corpus WER difference (words as weights, as WER is
counted) that a large test set drawn like the calibration set would show, in WER points
x 1/100. R(λ) <= ε  <=>  E[z] <= 0 with the per-utterance loss z_i = e_i(λ) - e_i(last) - ε w_i,
so H0(λ): E[z] > 0 is tested with a betting p-value on z / B. B bounds z from above: the most
errors any exit adds to any calibration utterance, minus ε times its words (over all exits, so
it does not depend on the policy or threshold).

Candidates are ordered from most compute to least (fixed: the exits from the last down; score
rules: the threshold at which fewer utterances stop first); the last exit itself has R = 0 and
is the answer when no candidate is certified.
"""

import json
import math
import operator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ee_asr.common.edit_ops import error_rate
from ee_asr.common.errors import UserError
from ee_asr.exits.policies import LAYER_POLICIES, RULES, check_policy
from ee_asr.score.risk_control import certified_prefix
from ee_asr.score.sweep import group_by_utterance

CALIBRATION_FILE = "calibration.json"  # in the experiment dir, and copied into its ONNX export

METHOD = ("Learn-then-Test (Angelopoulos et al. 2021): thresholds tested from most to least compute, "
          "each H0 'WER increase > ε' at level δ, stopping at the first not rejected (fixed-sequence, "
          "family-wise error <= δ); p-values from a betting test on the bounded per-utterance loss "
          "(Waudby-Smith and Ramdas 2023; valid at any sample size).")
ASSUMPTIONS = ("Calibration and test utterances are exchangeable (drawn alike: the same mix of speakers, "
               "conditions and lengths). The promise is on the expected corpus WER increase over the last "
               "exit (words as weights), E[errors(policy) - errors(last)] / E[words] <= ε, with probability "
               ">= 1 - δ over the calibration draw; one finite test set adds its own sampling noise around "
               "it. No test utterance gains more errors by exiting early than the most any calibration "
               "utterance gains at any exit (the loss bound; a new exchangeable utterance exceeds it with "
               "probability <= 1/(n+1)).")
LEARNED_NOTE = ("the learned policy's classifier must not have been fitted on the calibration set: "
                "its scores on its own training utterances are optimistic")


@dataclass
class ExitTable:
    """Per-utterance records at every exit as arrays: errors (n, E), words (n,), scores {field: (n, E)}."""
    name: str
    exits: list
    errors: np.ndarray
    words: np.ndarray
    scores: dict

    @classmethod
    def from_records(cls, records, name, source=None):
        by_utt, exits = group_by_utterance(records, source or name)
        utts = sorted(by_utt)
        rows = [[by_utt[u][e] for e in exits] for u in utts]
        fields = {rule.score for rule in RULES.values()} & {f for r in records for f in r}
        scores = {f: np.array([[r.get(f, math.nan) for r in row] for row in rows], dtype=np.float64)
                  for f in sorted(fields)}
        return cls(name, list(exits), np.array([[r["errors"] for r in row] for row in rows], dtype=np.float64),
                   np.array([row[-1]["ref_words"] for row in rows], dtype=np.float64), scores)

    def __len__(self):
        return len(self.words)


def direction(policy):
    """+1 where a larger threshold stops more utterances early (less compute), else -1."""
    if policy in LAYER_POLICIES:
        return -1
    return +1 if RULES[policy].compare in (operator.lt, operator.le) else -1


def default_thresholds(policy, exits):
    """A fixed grid (not drawn from the calibration data), most compute first."""
    if policy in LAYER_POLICIES:
        return [float(e) for e in reversed(exits[:-1])]
    if policy == "entropy":  # mean frame entropy / log V in [0, 1]: geometric, fine near 0
        grid = np.geomspace(1e-4, 1.0, 801)
    elif policy == "agree":
        grid = np.linspace(0.0, 1.0, 401)
    else:  # probabilities: an even grid, finer near 1 where confident scores crowd
        grid = np.unique(np.concatenate([np.linspace(0.0, 1.0, 401), 1.0 - np.geomspace(1e-5, 0.1, 201)]))
    grid = np.sort(grid) if direction(policy) > 0 else np.sort(grid)[::-1]
    return [float(t) for t in grid]


def order_thresholds(policy, thresholds):
    return sorted(float(t) for t in thresholds)[::direction(policy)]


def exit_index(table, policy, thresholds):
    """(n, G) index into table.exits of each utterance's exit at each threshold."""
    check_policy(policy)
    exits = np.array(table.exits, dtype=np.float64)
    thr = np.asarray(thresholds, dtype=np.float64)
    last = len(table.exits) - 1
    if policy == "fixed":
        return np.broadcast_to(np.minimum(np.searchsorted(exits, thr, side="left"), last), (len(table), thr.size))
    if policy == "budget":
        within = np.maximum(np.searchsorted(exits, thr, side="right") - 1, 0)
        return np.broadcast_to(within, (len(table), thr.size))
    field = RULES[policy].score
    if field not in table.scores or np.isnan(table.scores[field]).any():
        raise UserError(f"policy '{policy}' needs a '{field}' score in every record; {table.name} lacks it")
    stop = RULES[policy].compare(table.scores[field][:, None, :-1], thr[None, :, None])
    stop = np.concatenate([stop, np.ones(stop.shape[:2] + (1,), dtype=bool)], axis=2)
    return stop.argmax(axis=2)


class PolicyCurve:
    """One policy's candidates on a table: each utterance's errors and exit layer at each threshold."""

    def __init__(self, table, policy, thresholds=None):
        self.table, self.policy = table, policy
        self.thresholds = (order_thresholds(policy, thresholds) if thresholds
                           else default_thresholds(policy, table.exits))
        index = exit_index(table, policy, self.thresholds)
        self.errors = np.take_along_axis(table.errors, index, axis=1)
        self.layers = np.array(table.exits, dtype=np.float64)[index]

    def certify(self, rows, max_wer_increase, delta, rng):
        """Fixed-sequence Learn-then-Test on the utterances `rows`: (number of leading thresholds
        certified, their p-values, the loss bound)."""
        rows = rng.permutation(rows)  # betting needs an order independent of the losses
        t = self.table
        eps = max_wer_increase / 100.0
        last, words = t.errors[rows, -1:], t.words[rows][:, None]
        bound = float((t.errors[rows] - last - eps * words).max())
        if bound <= 0:  # no utterance can lose more than ε w at any exit: every candidate holds
            return len(self.thresholds), [0.0] * len(self.thresholds), bound
        k, p = certified_prefix(lambda lo, hi: self.errors[rows, lo:hi] - last - eps * words, bound, delta)
        return k, p, bound

    def point(self, rows, k):
        """WER increase over the last exit, WER and mean exit on `rows` with the k-th candidate
        (k = -1: the last exit)."""
        t = self.table
        words = t.words[rows].sum()
        last = t.errors[rows, -1].sum()
        errors, layers = (last, t.exits[-1]) if k < 0 else (self.errors[rows, k].sum(), self.layers[rows, k].mean())
        return {"wer": float(error_rate(errors, words)), "last_exit_wer": float(error_rate(last, words)),
                "wer_increase": float(error_rate(errors - last, words)), "mean_exit": float(layers),
                "compute_ratio": float(layers) / t.exits[-1]}

    def increases(self, rows=None):
        """WER increase (points) and compute ratio at every candidate, over `rows` (default all)."""
        rows = np.arange(len(self.table)) if rows is None else rows
        words, last = self.table.words[rows].sum(), self.table.errors[rows, -1].sum()
        inc = 100.0 * (self.errors[rows].sum(axis=0) - last) / max(words, 1)
        return inc, self.layers[rows].mean(axis=0) / self.table.exits[-1]


def never_stops(policy, exits):
    """The threshold with which `policy` always answers at the last exit."""
    if policy in LAYER_POLICIES:
        return float(exits[-1])
    return -math.inf if direction(policy) > 0 else math.inf


def calibrate(table, policy, max_wer_increase, confidence=0.9, thresholds=None, seed=0, curve=None):
    """The least-compute threshold of `policy` whose WER increase over the last exit is <= ε
    (`max_wer_increase`, WER points) with probability >= `confidence`; a dict for calibration.json
    (threshold None: no candidate certified, answer at the last exit)."""
    if not 0 < confidence < 1:
        raise UserError(f"--confidence must be between 0 and 1 (exclusive), not {confidence}")
    if max_wer_increase < 0:
        raise UserError(f"--max-wer-increase must be >= 0 WER points, not {max_wer_increase}")
    curve = curve or PolicyCurve(table, policy, thresholds)
    rows = np.arange(len(table))
    k, p, bound = curve.certify(rows, max_wer_increase, 1 - confidence, np.random.default_rng(seed))
    entry = {"policy": policy, "threshold": curve.thresholds[k - 1] if k else None,
             "max_wer_increase": max_wer_increase, "confidence": confidence,
             "calibration_set": table.name, "last_exit": table.exits[-1], "utterances": len(table),
             "words": int(table.words.sum()),
             **curve.point(rows, k - 1), "certified": k, "candidates": len(curve.thresholds),
             "p_value": float(p[k - 1]) if k else None, "loss_bound": bound, "seed": seed}
    if policy == "learned":
        entry["note"] = LEARNED_NOTE
    return entry


def calibration_document(entries, source):
    return {"method": METHOD, "assumptions": ASSUMPTIONS, "source": str(source), "entries": entries}


def read_calibration(path):
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such calibration file; run ee_asr.bin.calibrate_exits") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise UserError(f"{path}: not a calibration file (no 'entries' list)")
    return document


def calibrated_threshold(path, policy, max_wer_increase, confidence=None):
    """The calibrated threshold of `policy` for ε (and confidence, if given) in a calibration.json;
    a policy that certified nothing gets the threshold with which it never stops early."""
    document = read_calibration(path)
    matches = [e for e in document.get("entries", []) if e.get("policy") == policy
               and abs(e.get("max_wer_increase", math.nan) - max_wer_increase) < 1e-9
               and (confidence is None or abs(e.get("confidence", math.nan) - confidence) < 1e-9)]
    if not matches:
        have = ", ".join(f"{e.get('policy')} ε={e.get('max_wer_increase')} conf={e.get('confidence')}"
                         for e in document.get("entries", [])) or "none"
        want = f"policy '{policy}' with --max-wer-increase {max_wer_increase}"
        want += f" and --confidence {confidence}" if confidence is not None else ""
        raise UserError(f"{path}: no calibration for {want} (it has: {have}); run ee_asr.bin.calibrate_exits")
    if len(matches) > 1 and confidence is None:
        raise UserError(f"{path}: {len(matches)} calibrations of '{policy}' at ε={max_wer_increase}: "
                        "name the --confidence")
    entry = matches[0]
    if entry["threshold"] is None:
        return never_stops(policy, [entry["last_exit"]])
    return float(entry["threshold"])


def set_name(path):
    """decode_<set>/exits.jsonl -> <set>; any other file: its directory's name."""
    d = Path(path).resolve().parent.name
    return d[len("decode_"):] if d.startswith("decode_") else d
