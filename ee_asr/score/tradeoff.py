"""The WER-versus-compute trade-off of an experiment: tables and a plot for RESULTS.md.

Curves come from offline sweeps over `exits.jsonl` (a dense threshold grid, same decision
rule as online decoding); the measured operating points come from the policy decodes that
stage 5 ran (`policy_<name>/thr_<t>/{summary.json,results.jsonl}`), with their seconds. First
comes the verdict a user needs: does each policy beat the fixed exits at equal compute
(score/equal_compute.py)? Then the tables, and the plot, on which points significantly better
than the fixed-exit line are filled and significantly worse ones crossed.
"""

import json
from pathlib import Path

import numpy as np

from ee_asr.exits.exit_classifier import CLASSIFIER_FILE, ExitClassifier, add_predictions
from ee_asr.exits.policies import RULES
from ee_asr.score.equal_compute import FixedLine, compare, comparison_table, summary_line
from ee_asr.score.significance import bootstrap_counts
from ee_asr.score.sweep import group_by_utterance, markdown_table, sweep

CURVE_POLICIES = tuple(RULES)  # entropy, maxprob, nbest, seqpost, agree, learned


def dense_grid(records, field, n=40):
    """Thresholds at quantiles of the recorded scores, so every curve spans its whole range."""
    values = np.array([r[field] for r in records if field in r])
    if values.size == 0:
        return []
    qs = np.unique(np.quantile(values, np.linspace(0, 1, n)))
    return [float(q) for q in qs]


def sweep_curves(records):
    curves = {"fixed": sweep(records, "fixed"), "oracle": sweep(records, "oracle", with_choices=True)}
    for policy in CURVE_POLICIES:
        field = RULES[policy].score
        if all(field in r for r in records):
            grid = dense_grid(records, field)
            if policy == "agree":  # few distinct distances (0 and 1 mostly): add an even grid
                grid = sorted(set(grid) | {round(t, 2) for t in np.linspace(0, 1, 21)})
            curves[policy] = sweep(records, policy, grid, with_choices=True)
    return curves


def measured_points(decode_dir):
    points = []
    for f in sorted(Path(decode_dir).glob("policy_*/thr_*/summary.json")):
        p = json.loads(f.read_text())
        results = f.parent / "results.jsonl"
        if results.is_file():
            rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
            p["choices"] = {r["utt"]: r["exit"] for r in rows}
            p["utt_errors"] = {r["utt"]: r["errors"] for r in rows}
        points.append(p)
    return sorted(points, key=lambda p: (p["policy"], p["threshold"]))


def measured_table(points):
    if not points:
        return ""
    full = [p["seconds"] for p in points if p["policy"] == "fixed" and p["compute_ratio"] == 1.0]
    lines = ["|policy|threshold|WER|mean exit|compute|seconds|time vs full|", "|---|---|---|---|---|---|---|"]
    for p in points:
        rel = f"{p['seconds'] / full[0]:.3f}" if full else "-"
        cap = f" (max {p['max_layers']})" if p.get("max_layers") else ""
        lines.append(f"|{p['policy']}|{p['threshold']:g}{cap}|{p['wer']:.2f}|{p['mean_exit']:.2f}|"
                     f"{p['compute_ratio']:.3f}|{p['seconds']:.2f}|{rel}|")
    return "\n".join(lines) + "\n"


def equal_compute(records, curves, measured, resamples=1000):
    """{name: [comparison, ...]} for every offline curve and every online-measured policy."""
    by_utt, exits = group_by_utterance(records)
    line = FixedLine(by_utt, exits)
    counts = bootstrap_counts(len(line.utts), resamples)
    out = {}
    for policy, points in curves.items():
        if policy != "fixed":
            out[policy] = [{**compare(line, p["choices"], counts), "threshold": p["threshold"]} for p in points]
    for p in measured:
        if p["policy"] != "fixed" and "choices" in p and set(p["choices"]) == set(line.utts):
            cap = f", max {p['max_layers']} layers" if p.get("max_layers") else ""
            out.setdefault(f"{p['policy']} (online{cap})", []).append(
                {**compare(line, p["choices"], counts, p["utt_errors"]), "threshold": p["threshold"]})
    return out


def versus(records, curves, policy, baseline, resamples=1000):
    """`policy`'s sweep points against `baseline`'s sweep at equal mean exit (the paper's claim that
    the N-best posterior selects exits better than entropy); [] where either curve is missing."""
    if policy not in curves or baseline not in curves:
        return []
    by_utt, exits = group_by_utterance(records)
    line = FixedLine(by_utt, exits)
    base = line.curve(curves[baseline])
    counts = bootstrap_counts(len(line.utts), resamples)
    index = {e: i for i, e in enumerate(exits)}
    out = []
    for p in curves[policy]:
        if base.exits[0] <= p["mean_exit"] <= base.exits[-1]:
            errors = {u: line.errors[i, index[p["choices"][u]]] for i, u in enumerate(line.utts)}
            out.append({**compare(base, p["choices"], counts, errors), "threshold": p["threshold"]})
    return out


def plot(curves, measured, path, title, comparisons=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comparisons = comparisons or {}
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    for policy in CURVE_POLICIES:
        if policy in curves:
            pts = sorted(curves[policy], key=lambda p: p["mean_exit"])
            (handle,) = ax.plot([p["mean_exit"] for p in pts], [p["wer"] for p in pts], label=policy, marker=".", lw=1)
            # points significantly better than the fixed exits at equal compute: filled circles
            good = [c for c in comparisons.get(policy, []) if c["verdict"] == "better"]
            if good:
                ax.plot([c["mean_exit"] for c in good], [c["wer"] for c in good], "o", color=handle.get_color(), ms=6)
    fixed = curves["fixed"]
    ax.plot([p["mean_exit"] for p in fixed], [p["wer"] for p in fixed], "ks--", label="fixed exit", lw=1.5)
    o = curves["oracle"][0]
    ax.plot([o["mean_exit"]], [o["wer"]], "r*", ms=12, label="oracle (bound)")
    if measured:
        ax.plot([p["mean_exit"] for p in measured], [p["wer"] for p in measured], "o", mfc="none", mec="gray",
                label="measured (online)")
    ax.plot([], [], "o", color="gray", label="better than fixed at equal compute (95%)")
    save_wer_plot(fig, ax, "mean exit layer (compute)", title, path)


def save_wer_plot(fig, ax, xlabel, title, path):
    """Label a WER plot, write it to `path` (a PNG, replaced whole) and close it."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel("WER (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def tradeoff_section(decode_dir, records, exp_dir, resamples=1000):
    """Markdown for one decode dir: the equal-compute verdicts, curves, measured points, the plot."""
    name = Path(decode_dir).name
    classifier = Path(exp_dir) / CLASSIFIER_FILE
    if classifier.is_file():
        add_predictions(records, ExitClassifier.load(classifier))
    curves = sweep_curves(records)
    measured = measured_points(decode_dir)
    comparisons = equal_compute(records, curves, measured, resamples)
    png = Path(exp_dir) / f"tradeoff_{name}.png"
    plot(curves, measured, png, f"{Path(exp_dir).name} {name}", comparisons)
    text = [f"### Exit selection: {name}\n",
            "Does each policy beat the fixed exits at equal compute? (WER difference to the fixed-exit line "
            f"interpolated at the policy's mean exit; paired bootstrap, {resamples} draws; negative = better; "
            "the oracle is the bound)\n",
            "\n".join(summary_line(k, v) for k, v in comparisons.items()) + "\n",
            f"![WER vs mean exit layer]({png.name})\n", "Fixed exits and the oracle:\n",
            markdown_table(curves["fixed"] + curves["oracle"])]
    for policy in CURVE_POLICIES:
        if policy in curves:
            text += [f"\n{policy} (offline sweep over recorded scores, against the fixed exits at equal compute):\n",
                     comparison_table(policy, thin(comparisons[policy]))]
    paper = versus(records, curves, "nbest", "entropy", resamples)
    if paper:
        text += ["\nThe paper's selection: the N-best posterior against entropy at equal compute (entropy's "
                 "sweep interpolated at each nbest point's mean exit; negative = nbest better):\n",
                 summary_line("nbest vs entropy", paper) + "\n", comparison_table("nbest", thin(paper), "entropy")]
    online = {k: v for k, v in comparisons.items() if k.endswith("(online)")}
    if measured:
        text += ["\nMeasured online (layers above the exit not computed):\n", measured_table(measured)]
    for k, v in online.items():
        text += [f"\n{k} against the fixed exits at equal compute:\n", comparison_table(k.split()[0], v)]
    return "\n".join(text)


def thin(points, n=8):
    """At most n evenly spaced rows of a dense sweep, for a readable table."""
    if len(points) <= n:
        return points
    idx = np.linspace(0, len(points) - 1, n).round().astype(int)
    return [points[i] for i in sorted(set(idx))]
