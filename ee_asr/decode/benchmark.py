"""What early exit saves in decoding, measured: decoding time per exit against the bare
encoder's ideal, and policy operating points against full decoding (the training step's cost
is timed in train/step_timing.py). Every ratio is measured within one run, measurements
interleaved and repeated (the minimum is kept), because a shared machine is noisy."""

import torch

from ee_asr.common.timing import timed as _timed
from ee_asr.data.batching import make_batches
from ee_asr.decode.dynamic import decode_dynamic


def load_batches(dataset, batch_bins, max_utts, device="cpu"):
    utts = sorted(dataset.lengths)[:max_utts]
    batches = make_batches({u: dataset.lengths[u] for u in utts}, batch_bins)
    return [tuple(t.to(device) if torch.is_tensor(t) else t for t in dataset.collate(b)) for b in batches]


@torch.no_grad()
def bare_encoder(model, x, xl, layers):
    feats, lens = model.prepare(x, xl)
    state = model.encoder.start(feats, lens)
    model.encoder.advance(state, layers)


def time_exits(model, batches, repeats):
    """Per exit: seconds to decode everything with a fixed exit, and the bare encoder's seconds."""
    exits = model.encoder.exit_layers
    best = {e: [float("inf"), float("inf")] for e in exits}
    for _ in range(repeats):
        for e in exits:
            t_dec = sum(_timed(lambda: decode_dynamic(model, x, xl, "fixed", e)) for _, x, xl, _, _ in batches)
            t_enc = sum(_timed(lambda: bare_encoder(model, x, xl, e)) for _, x, xl, _, _ in batches)
            best[e] = [min(best[e][0], t_dec), min(best[e][1], t_enc)]
    full_dec, full_enc = best[exits[-1]]
    return [{"exit": e, "seconds": best[e][0], "ratio": best[e][0] / full_dec,
             "ideal_ratio": best[e][1] / full_enc} for e in exits]


def time_policies(model, batches, operating_points, repeats, wer_of, search=None, max_layers=None):
    """operating_points: [(policy, threshold)]; wer_of(results) -> WER; `search`: the ExitSearch
    (N-best size, exit classifier), `max_layers`: a layer budget for every point."""
    last = model.encoder.exit_layers[-1]
    points = [("fixed", last)] + [p for p in operating_points if p != ("fixed", last)]
    best, outs = {p: float("inf") for p in points}, {}
    for _ in range(repeats):
        for policy, thr in points:
            res = []
            cap = None if (policy, thr) == ("fixed", last) else max_layers  # the reference is the full model
            t = sum(_timed(lambda: res.extend(decode_dynamic(model, x, xl, policy, thr, search=search,
                                                             max_layers=cap)))
                    for _, x, xl, _, _ in batches)
            best[(policy, thr)] = min(best[(policy, thr)], t)
            outs[(policy, thr)] = res
    full = best[("fixed", last)]
    rows = []
    for policy, thr in points:
        res = outs[(policy, thr)]
        mean_exit = sum(r["exit"] for r in res) / len(res)
        rows.append({"policy": policy, "threshold": thr, "wer": wer_of(res), "mean_exit": mean_exit,
                     "compute_ratio": mean_exit / last, "time_ratio": best[(policy, thr)] / full,
                     "seconds": best[(policy, thr)]})
    return rows
