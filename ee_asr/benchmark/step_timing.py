"""What the early-exit loss costs in training: seconds per optimizer step of the early-exit
model against a single-exit model of the same depth (the same encoder cut to one exit at its
last layer), on real batches or on random inputs shaped like them. The two models' steps are
interleaved and repeated (the minimum is kept), because a shared machine is noisy."""

import copy

import torch

from ee_asr.common.timing import timed as _timed
from ee_asr.common.timing import work_clock
from ee_asr.models.registry import build_model


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


def time_train_steps(config, batches, repeats, steps, device="cpu", with_loop=False):
    """Seconds per optimizer step (forward, backward, AdamW) for the early-exit and single-exit
    models; `with_loop` adds the early-exit model with espnet's CTC module per exit
    (`early_exit_loop`), the form before models/stacked_ctc.py."""
    models = {"early_exit": build_model(config).to(device),
              "single_exit": build_model(single_exit_config(config)).to(device)}
    if with_loop:
        models["early_exit_loop"] = build_model(config).to(device)
        models["early_exit_loop"].stack_exits = False
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    batches = batches[:steps]
    clock = work_clock(device)
    # per batch and model the fastest of `repeats` steps, models interleaved step by step, so
    # that a load burst on a shared machine hits every model alike and the minimum discards it
    best = {k: [float("inf")] * len(batches) for k in models}
    for m in models.values():
        m.train()
    for _ in range(repeats):
        for j, (_, x, xl, y, yl) in enumerate(batches):
            for k, m in models.items():
                torch.manual_seed(0)  # the same SpecAugment masks for every model
                best[k][j] = min(best[k][j], _timed(lambda: _train_step(m, opts[k], x, xl, y, yl), clock))
    return {k: sum(v) / len(v) for k, v in best.items()}


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
