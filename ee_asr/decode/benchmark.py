"""What early exit saves, measured: decoding time per exit against the bare encoder's ideal,
policy operating points against full decoding, and the training step against a single-exit
model of the same depth. Every ratio is measured within one run, measurements interleaved
and repeated (the minimum is kept), because a shared machine is noisy."""

import copy
import time

import torch

from ee_asr.data.batching import make_batches
from ee_asr.decode.dynamic import decode_dynamic
from ee_asr.models.registry import build_model


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn):
    _sync()
    start = time.perf_counter()
    fn()
    _sync()  # GPU work is asynchronous: time it to completion
    return time.perf_counter() - start


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


def _train_step(model, opt, x, xl, y, yl):
    loss, _ = model(x, xl, y, yl)
    loss.backward()
    opt.step()
    opt.zero_grad()


def single_exit_config(config):
    """The same encoder cut to one exit at the last layer: the single-exit baseline."""
    single = copy.deepcopy(config)
    single["encoder_conf"]["exit_layers"] = [config["encoder_conf"].get("exit_layers", [12])[-1]]
    single["model_conf"] = {k: v for k, v in (config.get("model_conf") or {}).items() if k != "exit_weighting"}
    return single


def time_train_steps(config, batches, repeats, steps, device="cpu"):
    """Seconds per optimizer step (forward, backward, AdamW) for the early-exit and single-exit models."""
    models = {"early_exit": build_model(config).to(device),
              "single_exit": build_model(single_exit_config(config)).to(device)}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    best = {k: float("inf") for k in models}
    for m in models.values():
        m.train()
    for _ in range(repeats):
        for k, m in models.items():
            total = 0.0
            for _, x, xl, y, yl in batches[:steps]:
                torch.manual_seed(0)  # the same SpecAugment masks for both models
                total += _timed(lambda: _train_step(m, opts[k], x, xl, y, yl))
            best[k] = min(best[k], total / min(steps, len(batches)))
    return best


def synthetic_batches(config, n_batches, batch_size, seconds, device="cpu", tokens_per_second=4.0):
    """Random inputs shaped like real ones (fbank frames, or raw samples for input size 1) with
    lengths from `seconds`/2 to `seconds`, and random token targets: for timing only."""
    gen = torch.Generator().manual_seed(0)
    raw = config["input_size"] == 1
    per_second = 16000 if raw else 100
    out = []
    for b in range(n_batches):
        lens = torch.linspace(seconds / 2, seconds, batch_size).mul(per_second).long()
        x = torch.randn(batch_size, int(lens.max()), config["input_size"], generator=gen)
        ylen = (lens.float() / per_second * tokens_per_second).long().clamp_min(1)
        y = torch.randint(1, config["vocab_size"] - 1, (batch_size, int(ylen.max())), generator=gen)
        out.append((None, x.to(device), lens.to(device), y.to(device), ylen.to(device)))
    return out
