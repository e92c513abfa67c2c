"""What early exit saves in decoding, measured: decoding time per exit against the bare
encoder's ideal, and policy operating points against full decoding (the training step's cost
is timed in benchmark/step_timing.py). Every ratio is measured within one run, measurements
interleaved and repeated (the minimum is kept), because a shared machine is noisy; with one
torch thread on a CPU the clock is the thread's CPU time (common/timing.work_clock)."""

import torch

from ee_asr.common.timing import timed, work_clock
from ee_asr.data.batching import make_batches
from ee_asr.decode.torch_backend import torch_engine
from ee_asr.exits.policies import Policy


def load_batches(dataset, batch_bins, max_utts, device="cpu"):
    utts = sorted(dataset.lengths)[:max_utts]
    batches = make_batches({u: dataset.lengths[u] for u in utts}, batch_bins)
    return [tuple(t.to(device) if torch.is_tensor(t) else t for t in dataset.collate(b)) for b in batches]


def load_test_set(exp_dir, data_dir, batch_bins, max_utts, device="cpu"):
    """A trained experiment and the test set a benchmark decodes: (model, config, tokenizer,
    batches, reference texts in batch order)."""
    from ee_asr.data.dataset import FeatureDataset
    from ee_asr.data.tokenizer import Tokenizer
    from ee_asr.models.load import load_trained

    model, config = load_trained(exp_dir, device=device)
    tokenizer = Tokenizer(config["bpemodel"])
    dataset = FeatureDataset(data_dir, tokenizer)
    batches = load_batches(dataset, batch_bins, max_utts, device)
    return model, config, tokenizer, batches, [dataset.text[u] for b in batches for u in b[0]]


@torch.no_grad()
def bare_encoder(model, x, xl, layers):
    feats, lens = model.prepare(x, xl)
    state = model.encoder.start(feats, lens)
    model.encoder.advance(state, layers)


def _clock(model):
    return work_clock(next(model.parameters()).device.type)


def time_exits(model, batches, repeats, lm_engine=None):
    """Per exit: seconds to decode everything with a fixed exit, and the bare encoder's seconds;
    with `lm_engine` (an exit engine with the LM beam) also the LM beam's seconds at that exit
    (`lm_seconds`), its ratio (`lm_ratio`) against greedy decoding at the last exit as every ratio here."""
    exits, clock = model.encoder.exit_layers, _clock(model)
    greedy = torch_engine(model)

    def seconds(run):
        return sum(timed(lambda: run(x, xl), clock) for _, x, xl, _, _ in batches)

    best = {e: [float("inf")] * 3 for e in exits}
    for _ in range(repeats):
        for e in exits:
            times = (seconds(lambda x, xl: greedy.decode((x, xl), Policy("fixed", e))),
                     seconds(lambda x, xl: bare_encoder(model, x, xl, e)),
                     float("inf") if lm_engine is None else
                     seconds(lambda x, xl: lm_engine.decode((x, xl), Policy("fixed", e))))
            best[e] = [min(b, t) for b, t in zip(best[e], times)]
    full_dec, full_enc, _ = best[exits[-1]]
    rows = [{"exit": e, "seconds": best[e][0], "ratio": best[e][0] / full_dec,
             "ideal_ratio": best[e][1] / full_enc} for e in exits]
    if lm_engine is not None:
        for row in rows:
            row["lm_seconds"] = best[row["exit"]][2]
            row["lm_ratio"] = row["lm_seconds"] / full_dec
    return rows


def time_policies(engine, batches, operating_points, repeats, wer_of, max_layers=None, reference=None,
                  exact_nbest_engine=None):
    """operating_points: [(policy, threshold)]; wer_of(results) -> WER; `engine`: the torch exit
    engine (N-best size, exit classifier, LM beam), `max_layers`: a layer budget for every point.
    The time ratios are against the last exit decoded with `reference` (an engine), timed
    beside the points, or by default with `engine`: the first row, the full model's.
    `exact_nbest_engine`: an engine without N-best bounds; each nbest point is then also
    timed with it (rows with `nbest_bounds` False and `same_exits`: utterances whose exit equals
    the bounded decoding's)."""
    model = engine.backend.model
    last, clock = engine.exit_layers[-1], _clock(model)
    points = [("fixed", last)] + [p for p in operating_points if p != ("fixed", last)]
    runs = [(p, engine) for p in points]
    if exact_nbest_engine is not None:
        runs += [(p, exact_nbest_engine) for p in points if p[0] == "nbest"]
    if reference is not None:
        runs.append((("fixed", last), reference))
    best, outs = [float("inf")] * len(runs), [None] * len(runs)
    for _ in range(repeats):
        for k, ((policy, thr), run_engine) in enumerate(runs):
            res = []
            cap = None if (policy, thr) == ("fixed", last) else max_layers  # the reference is the full model
            point = Policy(policy, thr, cap)
            t = sum(timed(lambda: res.extend(run_engine.decode((x, xl), point)), clock) for _, x, xl, _, _ in batches)
            best[k] = min(best[k], t)
            outs[k] = res
    full = best[0] if reference is None else best[-1]
    rows = []
    for k, ((policy, thr), run_engine) in enumerate(runs[:len(runs) - (reference is not None)]):
        res = outs[k]
        mean_exit = sum(r["exit"] for r in res) / len(res)
        row = {"policy": policy, "threshold": thr, "wer": wer_of(res), "mean_exit": mean_exit,
               "compute_ratio": mean_exit / last, "time_ratio": best[k] / full, "seconds": best[k]}
        if policy == "nbest" and exact_nbest_engine is not None:
            row["nbest_bounds"] = run_engine is not exact_nbest_engine
            if not row["nbest_bounds"]:
                bounded = outs[points.index((policy, thr))]
                row["same_exits"] = sum(a["exit"] == b["exit"] for a, b in zip(res, bounded))
        rows.append(row)
    return rows
