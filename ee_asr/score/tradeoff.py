"""The WER-versus-compute trade-off of an experiment: tables and a plot for RESULTS.md.

Curves come from offline sweeps over `exits.jsonl` (a dense threshold grid, same decision
rule as online decoding); the measured operating points come from the policy decodes that
stage 5 ran (`policy_<name>/thr_<t>/summary.json`), with their seconds.
"""

import json
from pathlib import Path

import numpy as np

from ee_asr.exits.policies import RULES
from ee_asr.exits.sweep import markdown_table, sweep



def dense_grid(records, field, n=40):
    """Thresholds at quantiles of the recorded scores, so every curve spans its whole range."""
    values = np.array([r[field] for r in records if field in r])
    if values.size == 0:
        return []
    qs = np.unique(np.quantile(values, np.linspace(0, 1, n)))
    return [float(q) for q in qs]


def sweep_curves(records):
    curves = {"fixed": sweep(records, "fixed"), "oracle": sweep(records, "oracle")}
    for policy, rule in RULES.items():
        grid = dense_grid(records, rule.score)
        if grid:
            curves[policy] = sweep(records, policy, grid)
    return curves


def measured_points(decode_dir):
    points = []
    for f in sorted(Path(decode_dir).glob("policy_*/thr_*/summary.json")):
        points.append(json.loads(f.read_text()))
    return sorted(points, key=lambda p: (p["policy"], p["threshold"]))


def measured_table(points):
    if not points:
        return ""
    full = [p["seconds"] for p in points if p["policy"] == "fixed" and p["compute_ratio"] == 1.0]
    lines = ["|policy|threshold|WER|mean exit|compute|seconds|time vs full|", "|---|---|---|---|---|---|---|"]
    for p in points:
        rel = f"{p['seconds'] / full[0]:.3f}" if full else "-"
        lines.append(f"|{p['policy']}|{p['threshold']:g}|{p['wer']:.2f}|{p['mean_exit']:.2f}|"
                     f"{p['compute_ratio']:.3f}|{p['seconds']:.2f}|{rel}|")
    return "\n".join(lines) + "\n"


def plot(curves, measured, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for policy in ("entropy", "maxprob", "nbest"):
        if policy in curves:
            pts = sorted(curves[policy], key=lambda p: p["mean_exit"])
            ax.plot([p["mean_exit"] for p in pts], [p["wer"] for p in pts], label=policy, marker=".", lw=1)
    fixed = curves["fixed"]
    ax.plot([p["mean_exit"] for p in fixed], [p["wer"] for p in fixed], "ks--", label="fixed exit", lw=1)
    o = curves["oracle"][0]
    ax.plot([o["mean_exit"]], [o["wer"]], "r*", ms=12, label="oracle")
    if measured:
        ax.plot([p["mean_exit"] for p in measured], [p["wer"] for p in measured], "o", mfc="none", mec="gray",
                label="measured (online)")
    ax.set_xlabel("mean exit layer")
    ax.set_ylabel("WER (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def tradeoff_section(decode_dir, records, exp_dir):
    """Markdown for one decode dir: curves summary, measured points, and the plot."""
    name = Path(decode_dir).name
    curves = sweep_curves(records)
    measured = measured_points(decode_dir)
    png = Path(exp_dir) / f"tradeoff_{name}.png"
    plot(curves, measured, png, f"{Path(exp_dir).name} {name}")
    text = [f"### Exit selection: {name}\n", f"![WER vs mean exit layer]({png.name})\n",
            "Fixed exits and the oracle:\n", markdown_table(curves["fixed"] + curves["oracle"])]
    for policy in ("entropy", "maxprob", "nbest"):
        if policy in curves:
            text += [f"\n{policy} (offline sweep over recorded scores):\n", markdown_table(thin(curves[policy]))]
    if measured:
        text += ["\nMeasured online (layers above the exit not computed):\n", measured_table(measured)]
    return "\n".join(text)


def thin(points, n=8):
    """At most n evenly spaced rows of a dense sweep, for a readable table."""
    if len(points) <= n:
        return points
    idx = np.linspace(0, len(points) - 1, n).round().astype(int)
    return [points[i] for i in sorted(set(idx))]
