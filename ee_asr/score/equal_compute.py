"""Does a dynamic policy beat the fixed exits at equal compute? The comparison a user must see first.

The fixed-exit line at a mean exit m between two exits a < m < b is the mixture that sends a
share (b - m) / (b - a) of the utterances to exit a and the rest to b: its expected errors are the
per-utterance linear interpolation of the two exits' errors, and its compute is m. A policy
point at mean exit m is compared with that mixture on the same utterances: the WER difference
(policy - fixed, negative = the policy is better) with a paired bootstrap interval (each draw
resamples utterances and scores both on the same draw, as score/significance.py does per exit).
"""

import numpy as np

from ee_asr.common.edit_ops import error_rate


class FixedLine:
    """Per-utterance errors at every exit (utterances in `utts` order) and the interpolated line."""

    def __init__(self, by_utt, exits):
        self.exits, self.utts = list(exits), sorted(by_utt)
        self.errors = np.array([[by_utt[u][e]["errors"] for e in exits] for u in self.utts], dtype=np.float64)
        self.words = np.array([by_utt[u][exits[-1]]["ref_words"] for u in self.utts], dtype=np.float64)

    def curve(self, points):
        """Another policy's sweep as the line to beat: its points (with `choices`) at their mean exits,
        each utterance's errors at its chosen exit, interpolated between neighbouring points as the
        fixed exits are (a mixture of two thresholds). Points at the same mean exit keep the first."""
        index = {e: i for i, e in enumerate(self.exits)}
        rows = np.arange(len(self.utts))
        line = FixedLine.__new__(FixedLine)
        line.utts, line.words, xs, columns = self.utts, self.words, [], []
        for p in sorted(points, key=lambda p: p["mean_exit"]):
            if xs and p["mean_exit"] <= xs[-1]:
                continue
            xs.append(p["mean_exit"])
            columns.append(self.errors[rows, [index[p["choices"][u]] for u in self.utts]])
        line.exits, line.errors = xs, np.stack(columns, axis=1)
        return line

    def per_utterance_at(self, mean_exit):
        """Expected per-utterance errors of the fixed-exit mixture with this mean exit."""
        x = np.clip(mean_exit, self.exits[0], self.exits[-1])
        j = int(np.searchsorted(self.exits, x))
        if self.exits[min(j, len(self.exits) - 1)] == x:
            return self.errors[:, j]
        a, b = self.exits[j - 1], self.exits[j]
        w = (x - a) / (b - a)
        return (1 - w) * self.errors[:, j - 1] + w * self.errors[:, j]

    def wer_at(self, mean_exit):
        return error_rate(self.per_utterance_at(mean_exit).sum(), self.words.sum())

    def time_at(self, mean_exit, exit_times):
        """The fixed exits' measured time ratio interpolated at this mean exit ({exit: ratio})."""
        return float(np.interp(mean_exit, list(exit_times), list(exit_times.values())))


def compare(line, choices, counts, policy_errors=None, level=0.95):
    """choices: {utt: chosen exit}; policy_errors: {utt: errors} when they differ from the
    recorded exit's (online decodes); counts: bootstrap_counts. -> dict of the comparison."""
    if policy_errors is None:
        index = {e: i for i, e in enumerate(line.exits)}
        rows = np.arange(len(line.utts))
        pol = line.errors[rows, [index[choices[u]] for u in line.utts]]
    else:
        pol = np.array([policy_errors[u] for u in line.utts], dtype=np.float64)
    mean_exit = float(np.mean([choices[u] for u in line.utts]))
    fixed = line.per_utterance_at(mean_exit)
    diff = error_rate(pol.sum() - fixed.sum(), line.words.sum())
    draws = 100.0 * (counts @ (pol - fixed)) / np.maximum(counts @ line.words, 1)
    lo, hi = np.percentile(draws, [50.0 * (1 - level), 100.0 - 50.0 * (1 - level)])
    verdict = "better" if hi < 0 else "worse" if lo > 0 else "not significant"
    return {"mean_exit": mean_exit, "wer": error_rate(pol.sum(), line.words.sum()),
            "fixed_wer": error_rate(fixed.sum(), line.words.sum()), "difference": float(diff),
            "interval": (float(lo), float(hi)), "verdict": verdict, "p_better": float((draws < 0).mean())}


def summary_line(policy, comparisons):
    """One sentence per policy: does it beat the fixed exits at equal compute, and where."""
    inside = comparisons
    better = [c for c in inside if c["verdict"] == "better"]
    lower = [c for c in inside if c["difference"] < 0]
    best = min(inside, key=lambda c: c["difference"])
    where = (f"lower WER at {len(lower)} of {len(inside)} points (mean exit "
             f"{min(c['mean_exit'] for c in lower):.1f} to {max(c['mean_exit'] for c in lower):.1f})" if lower
             else f"lower WER at none of its {len(inside)} points")
    if better:
        head = f"**yes**: significantly better at {len(better)} point{'s' if len(better) > 1 else ''}"
    elif lower:
        head = "**not shown**: lower at some points, no difference significant"
    else:
        head = "**no**"
    lo, hi = best["interval"]
    return (f"- `{policy}`: {head}; {where}; best {best['difference']:+.2f} WER points at mean exit "
            f"{best['mean_exit']:.2f} (95% interval {lo:+.2f} .. {hi:+.2f})")


def comparison_table(policy, comparisons, against="fixed exits"):
    lines = [f"|policy|threshold|mean exit|WER|{against} at equal compute|difference|95% interval|verdict|",
             "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lo, hi = c["interval"]
        t = "-" if c.get("threshold") is None else f"{c['threshold']:g}"
        lines.append(f"|{policy}|{t}|{c['mean_exit']:.2f}|{c['wer']:.2f}|{c['fixed_wer']:.2f}|"
                     f"{c['difference']:+.2f}|{lo:+.2f} .. {hi:+.2f}|{c['verdict']}|")
    return "\n".join(lines) + "\n"
