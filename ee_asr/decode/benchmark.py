"""What early exit saves in decoding, measured: decoding time per exit against the bare
encoder's ideal, and policy operating points against full decoding (the training step's cost
is timed in train/step_timing.py). Every ratio is measured within one run, measurements
interleaved and repeated (the minimum is kept), because a shared machine is noisy; with one
torch thread on a CPU the clock is the thread's CPU time (common/timing.work_clock)."""

import torch

from ee_asr.common.timing import timed, work_clock
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


def _clock(model):
    return work_clock(next(model.parameters()).device.type)


def time_exits(model, batches, repeats):
    """Per exit: seconds to decode everything with a fixed exit, and the bare encoder's seconds."""
    exits, clock = model.encoder.exit_layers, _clock(model)
    best = {e: [float("inf"), float("inf")] for e in exits}
    for _ in range(repeats):
        for e in exits:
            t_dec = sum(timed(lambda: decode_dynamic(model, x, xl, "fixed", e), clock) for _, x, xl, _, _ in batches)
            t_enc = sum(timed(lambda: bare_encoder(model, x, xl, e), clock) for _, x, xl, _, _ in batches)
            best[e] = [min(best[e][0], t_dec), min(best[e][1], t_enc)]
    full_dec, full_enc = best[exits[-1]]
    return [{"exit": e, "seconds": best[e][0], "ratio": best[e][0] / full_dec,
             "ideal_ratio": best[e][1] / full_enc} for e in exits]


def time_policies(model, batches, operating_points, repeats, wer_of, search=None, max_layers=None,
                  exact_nbest_search=None):
    """operating_points: [(policy, threshold)]; wer_of(results) -> WER; `search`: the ExitSearch
    (N-best size, exit classifier), `max_layers`: a layer budget for every point.
    `exact_nbest_search`: an ExitSearch without N-best bounds; each nbest point is then also
    timed with it (rows with `nbest_bounds` False and `same_exits`: utterances whose exit equals
    the bounded decoding's)."""
    last, clock = model.encoder.exit_layers[-1], _clock(model)
    points = [("fixed", last, search)] + [(p, t, search) for p, t in operating_points if (p, t) != ("fixed", last)]
    if exact_nbest_search is not None:
        points += [(p, t, exact_nbest_search) for p, t, _ in points if p == "nbest"]
    best, outs = {}, {}
    for _ in range(repeats):
        for key in points:
            policy, thr, s = key
            res = []
            cap = None if (policy, thr) == ("fixed", last) else max_layers  # the reference is the full model
            t = sum(timed(lambda: res.extend(decode_dynamic(model, x, xl, policy, thr, search=s, max_layers=cap)),
                          clock) for _, x, xl, _, _ in batches)
            best[key] = min(best.get(key, float("inf")), t)
            outs[key] = res
    full = best[points[0]]
    rows = []
    for key in points:
        policy, thr, s = key
        res = outs[key]
        mean_exit = sum(r["exit"] for r in res) / len(res)
        row = {"policy": policy, "threshold": thr, "wer": wer_of(res), "mean_exit": mean_exit,
               "compute_ratio": mean_exit / last, "time_ratio": best[key] / full, "seconds": best[key]}
        if policy == "nbest":
            row["nbest_bounds"] = s is not exact_nbest_search
            if s is exact_nbest_search:
                bounded = outs[(policy, thr, search)]
                row["same_exits"] = sum(a["exit"] == b["exit"] for a, b in zip(res, bounded))
        rows.append(row)
    return rows
