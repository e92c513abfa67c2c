"""What dropping blank frames above an exit (exits/blank_skip.py) saves, measured: time and WER of
the fixed exits, of skipping alone (at the last exit) and of skipping under exit policies, every
configuration timed in one run, interleaved and repeated (the minimum kept), on one thread's CPU
time, as benchmark/policy_speed.py; in PyTorch or ONNX Runtime. Every time ratio is against the last
exit without skipping; every WER change is paired (score/compare.paired_difference)."""

import time

import numpy as np
import torch

from ee_asr.common.timing import timed
from ee_asr.data.tokenizer import BLANK_ID
from ee_asr.exits.blank_skip import keep_mask
from ee_asr.exits.policies import Policy
from ee_asr.score.compare import paired_difference
from ee_asr.score.tradeoff import save_wer_plot


def time_runs(runs, inputs, repeats, clock):
    """runs: [(engine, Policy)]; inputs: the batches as the engines' decode takes them -> (the
    least seconds of each run over `repeats` interleaved rounds, its results in batch order)."""
    best, outs = [float("inf")] * len(runs), [None] * len(runs)
    for _ in range(repeats):
        for k, (engine, policy) in enumerate(runs):
            res = []
            best[k] = min(best[k], sum(timed(lambda: res.extend(engine.decode(batch, policy)), clock)
                                       for batch in inputs))
            outs[k] = res
    return best, outs


@torch.no_grad()
def kept_share(backend, inputs, after, threshold):
    """The share of the valid frames the layers above exit `after` would see (any backend)."""
    kept, total = 0, 0
    index = backend.exit_layers.index(after)
    for batch in inputs:
        state = backend.start(batch)
        for i in range(index + 1):
            state = backend.advance(state, i)
        logp, lengths = backend.log_probs(state, index)
        kept += int(keep_mask(np.asarray(logp[..., BLANK_ID]), np.asarray(lengths), threshold).sum())
        total += int(lengths.sum())
    return kept / max(total, 1)


def torch_inputs(batches):
    """load_test_set's batches as the PyTorch engine takes them."""
    return [(x, xl) for _, x, xl, _, _ in batches]


def onnx_inputs(batches):
    """The same batches as the ONNX engine takes them: one (T, F) array per utterance."""
    return [[x[i, :n].numpy() for i, n in enumerate(xl.tolist())] for _, x, xl, _, _ in batches]


def blank_skip_table(engine_for, inputs, utt_errors, skips, points, repeats, clock=time.thread_time):
    """Rows for the fixed exits, the last exit with each skipping configuration, and each policy
    point (policy, threshold) without and with each skipping configuration.

    engine_for(skip): the exit engine (either backend) without skipping for None (a reference
    model, e.g. the one a skipping model was fine-tuned from, or the same), else skipping as
    `skip` = (after_layer, threshold); inputs: batches for its decode; utt_errors(results) ->
    [(errors, words)] per utterance in batch order; clock: the thread's CPU time by default (one
    torch thread; ONNX Runtime with one intra-op thread runs on the caller's). Each row: policy,
    threshold, skip, wer, mean_exit, seconds, time_ratio; with skipping also `kept` (share of
    frames above the skip) and `wer_change` (paired, with its 95% interval) against the same
    policy without skipping; policy rows also the fixed exits' time at their mean exit and WER at
    their time (`fixed_time_ratio`, `excess_time`, `fixed_wer_at_time`)."""
    plain = engine_for(None)
    exits, last = list(plain.exit_layers), plain.exit_layers[-1]
    skipping = {s: engine_for(s) for s in skips}
    configs = [("fixed", e, None) for e in exits] + [("fixed", last, s) for s in skips]
    for policy, thr in points:
        configs += [(policy, thr, None)] + [(policy, thr, s) for s in skips]
    runs = [(plain if s is None else skipping[s], Policy(p, t)) for p, t, s in configs]
    seconds, outs = time_runs(runs, inputs, repeats, clock)
    full = seconds[exits.index(last)]
    rows, utts = [], {}
    for (policy, thr, skip), sec, res in zip(configs, seconds, outs):
        utts[policy, thr, skip] = dict(enumerate(utt_errors(res)))
        errors, words = (sum(v) for v in zip(*utts[policy, thr, skip].values()))
        row = {"policy": policy, "threshold": thr, "skip": skip, "wer": 100.0 * errors / max(words, 1),
               "mean_exit": sum(r["exit"] for r in res) / len(res), "seconds": sec, "time_ratio": sec / full}
        if skip is not None:
            diff, interval = paired_difference(utts[policy, thr, skip], utts[policy, thr, None])
            kept = kept_share(skipping[skip].backend.backend, inputs, *skip)
            row.update(kept=kept, wer_change=diff, wer_change_interval=interval)
        rows.append(row)
    fixed = [r for r in rows if r["policy"] == "fixed" and r["skip"] is None]
    for row in rows:
        if row["policy"] != "fixed":
            row["fixed_time_ratio"] = float(np.interp(row["mean_exit"], exits, [r["time_ratio"] for r in fixed]))
            row["excess_time"] = row["time_ratio"] - row["fixed_time_ratio"]
            row["fixed_wer_at_time"] = float(np.interp(row["time_ratio"], [r["time_ratio"] for r in fixed],
                                                       [r["wer"] for r in fixed]))
            _against_slower_fixed_exit(row, fixed, utts)
    return rows


def _against_slower_fixed_exit(row, fixed, utts):
    """The cheapest fixed exit at least as slow as the point, and the point's paired WER change
    against it: a point that is faster and (significantly) better dominates the fixed-exit line."""
    slower = [r for r in fixed if r["time_ratio"] >= row["time_ratio"]]
    if not slower:
        return
    ref = min(slower, key=lambda r: r["time_ratio"])
    diff, interval = paired_difference(utts[row["policy"], row["threshold"], row["skip"]],
                                       utts["fixed", ref["threshold"], None])
    row.update(slower_fixed_exit=ref["threshold"], wer_change_vs_fixed=diff, wer_change_vs_fixed_interval=interval)


def markdown(rows):
    """The rows as one markdown table."""
    lines = ["|policy|threshold|skip after:threshold|frames kept above|WER|change (95% interval)|mean exit|"
             "time ratio|fixed exits' time at mean exit|fixed exits' WER at this time|"
             "change against the cheapest slower fixed exit|",
             "|---" * 11 + "|"]
    for r in rows:
        skip = "-" if r["skip"] is None else f"{r['skip'][0]}:{r['skip'][1]:g}"
        kept = f"{r['kept']:.3f}" if "kept" in r else "-"
        change = "-" if "wer_change" not in r else (
            f"{r['wer_change']:+.2f} ({r['wer_change_interval'][0]:+.2f} .. {r['wer_change_interval'][1]:+.2f})")
        fixed_t = f"{r['fixed_time_ratio']:.3f}" if "fixed_time_ratio" in r else "-"
        fixed_w = f"{r['fixed_wer_at_time']:.2f}" if "fixed_wer_at_time" in r else "-"
        versus = "-" if "slower_fixed_exit" not in r else (
            f"exit {r['slower_fixed_exit']:g}: {r['wer_change_vs_fixed']:+.2f} "
            f"({r['wer_change_vs_fixed_interval'][0]:+.2f} .. {r['wer_change_vs_fixed_interval'][1]:+.2f})")
        lines.append(f"|{r['policy']}|{r['threshold']:g}|{skip}|{kept}|{r['wer']:.2f}|{change}|{r['mean_exit']:.2f}|"
                     f"{r['time_ratio']:.3f}|{fixed_t}|{fixed_w}|{versus}|")
    return "\n".join(lines)


def plot(rows, path, title):
    """Time ratio against WER: the fixed exits' line, skipping alone, policies alone and with skipping."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    fixed = [r for r in rows if r["policy"] == "fixed" and r["skip"] is None]
    ax.plot([r["time_ratio"] for r in fixed], [r["wer"] for r in fixed], "ks--", lw=1.5, label="fixed exits")
    for r in fixed:
        ax.annotate(f"{r['threshold']:g}", (r["time_ratio"], r["wer"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    groups = {"skipping alone (last exit)": [r for r in rows if r["policy"] == "fixed" and r["skip"] is not None],
              "policies": [r for r in rows if r["policy"] != "fixed" and r["skip"] is None],
              "policies with skipping": [r for r in rows if r["policy"] != "fixed" and r["skip"] is not None]}
    for (label, group), marker in zip(groups.items(), ("^", "o", "D")):
        if group:
            ax.plot([r["time_ratio"] for r in group], [r["wer"] for r in group], marker, ls="none", label=label)
    save_wer_plot(fig, ax, "time / last exit without skipping (one thread)", title, path)
