"""Training speed at a user's scale: audio seconds trained per second and per step, for a config,
ours against ESPnet's own `ESPnetASRModel` (its Conformer with InterCTC at our exit layers, one
CTC head shared by the exits as ESPnet does), with and without mixed precision, on the same
batches; and how long the training loop waits for batches with and without loader workers.

Model steps are interleaved (one step of each variant per batch, then the next batch, in reverse
order every other repeat), repeated, and the fastest of the repeats kept per batch and variant,
so that a load burst on a shared machine hits every variant alike and the minimum discards it.
Both the wall clock and this thread's CPU time are kept; with one torch thread on a CPU the
latter is the work done, whatever else the machine runs meanwhile.
"""

import time

import torch

from ee_asr.data.loader import WaitClock, batch_loader
from ee_asr.models.ctc_ee import float32_region
from ee_asr.models.registry import build_model
from ee_asr.train.amp import MixedPrecision

FRAMES_PER_SECOND = 100  # 10 ms fbank frames


class Float32CTC(torch.nn.Module):
    """ESPnet's CTC module run in float32 under autocast, as ours is (models/ctc_ee.py): on a CPU
    torch's CTC has no bfloat16 kernel, and on a GPU autocast runs it in float32 anyway."""

    def __init__(self, ctc):
        super().__init__()
        self.ctc = ctc

    def forward(self, hs_pad, hlens, ys_pad, ys_lens):
        with float32_region(hs_pad):
            return self.ctc(hs_pad.float(), hlens, ys_pad, ys_lens)


def espnet_interctc_model(config):
    """ESPnet's Conformer-CTC with InterCTC at the exit layers below the last, the same shape as
    `config`'s encoder (espnet's defaults where ours has a knob ESPnet lacks). Features go in
    directly (frontend None: ESPnet's frontend needs torchaudio)."""
    from espnet2.asr.ctc import CTC
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
    from espnet2.asr.espnet_model import ESPnetASRModel

    enc = dict(config.get("encoder_conf") or {})
    blocks, exits = enc.get("num_blocks", 12), list(enc.get("exit_layers", [12]))
    encoder = ConformerEncoder(
        input_size=config["input_size"], output_size=enc.get("output_size", 256),
        attention_heads=enc.get("attention_heads", 4), linear_units=enc.get("linear_units", 2048),
        num_blocks=blocks, dropout_rate=enc.get("dropout_rate", 0.1),
        positional_dropout_rate=enc.get("positional_dropout_rate", 0.1),
        attention_dropout_rate=enc.get("attention_dropout_rate", 0.0), input_layer=enc.get("input_layer", "conv2d"),
        normalize_before=True, macaron_style=True, rel_pos_type="latest", pos_enc_layer_type="rel_pos",
        selfattention_layer_type="rel_selfattn", activation_type="swish", use_cnn_module=True,
        cnn_module_kernel=enc.get("cnn_module_kernel", 31), interctc_layer_idx=[e for e in exits if e < blocks],
        stochastic_depth_rate=enc.get("stochastic_depth_rate", 0.0))
    vocab = config["vocab_size"]
    ctc = CTC(vocab, encoder.output_size())
    inter = len(exits) - 1
    model = ESPnetASRModel(vocab_size=vocab, token_list=[str(i) for i in range(vocab)], frontend=None, specaug=None,
                           normalize=None, preencoder=None, encoder=encoder, postencoder=None, decoder=None,
                           ctc=ctc, joint_network=None, ctc_weight=1.0,
                           # the last exit and the mean of the others weighted as one exit each
                           interctc_weight=inter / (inter + 1) if inter else 0.0, report_cer=False, report_wer=False)
    model.ctc = Float32CTC(model.ctc)
    return model


def _ours_step(model, batch):
    _, x, xl, y, yl = batch
    return model(x, xl, y, yl)[0]


def _espnet_step(model, batch):
    _, x, xl, y, yl = batch
    return model(x, xl, y, yl)[0]


def model_variants(config, amp_modes=(False, True), with_espnet=True, device="cpu"):
    """{name: (model, step function, MixedPrecision)}: ours and ESPnet's, in float32 and bfloat16
    autocast. Neither has SpecAugment or normalisation (the same espnet modules in both)."""
    config = {**config, "normalize": None, "specaug": None}
    builders = {"ours": (lambda: build_model(config), _ours_step)}
    if with_espnet:
        builders["espnet_interctc"] = (lambda: espnet_interctc_model(config), _espnet_step)
    out = {}
    for name, (build, step) in builders.items():
        torch.manual_seed(0)
        model = build().to(device).train()
        for amp in amp_modes:
            # one model per precision: each has its own optimizer state, like a real run
            key = f"{name}_{'bf16' if amp else 'fp32'}"
            m = model if not amp else build().to(device).train()
            out[key] = (m, step, MixedPrecision(amp, "bfloat16", torch.device(device).type))
    return out


def audio_seconds(batch, frames_per_second=FRAMES_PER_SECOND):
    return float(batch[2].sum()) / frames_per_second


def time_model_steps(variants, batches, repeats, device="cpu"):
    """Per variant: seconds per optimizer step (forward, backward, AdamW), wall and CPU, the
    fastest of `repeats` per batch, and audio seconds per second of each."""
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, (m, _, _) in variants.items()}
    best = {k: {"wall": [float("inf")] * len(batches), "cpu": [float("inf")] * len(batches)} for k in variants}
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for r in range(repeats):
        # every other repeat in reverse, so that no variant always runs right after the same one
        # (whose data left the caches in its own state)
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for j, batch in enumerate(batches):
            for k in order:
                model, step, amp = variants[k]
                torch.manual_seed(j)  # the same dropout and stochastic depth draws for every variant
                sync()
                w, c = time.perf_counter(), time.thread_time()
                with amp.autocast():
                    loss = step(model, batch)
                amp.backward(loss)
                amp.step(opts[k], True)
                opts[k].zero_grad()
                sync()
                best[k]["wall"][j] = min(best[k]["wall"][j], time.perf_counter() - w)
                best[k]["cpu"][j] = min(best[k]["cpu"][j], time.thread_time() - c)
    audio = sum(audio_seconds(b) for b in batches)
    out = {}
    for k, t in best.items():
        wall, cpu = sum(t["wall"]), sum(t["cpu"])
        out[k] = {"step_seconds_wall": wall / len(batches), "step_seconds_cpu": cpu / len(batches),
                  "audio_seconds_per_wall_second": audio / wall, "audio_seconds_per_cpu_second": audio / cpu,
                  "audio_seconds_per_step": audio / len(batches)}
    return out


def time_loading(model, dataset, plan, num_workers, prefetch_factor=2, device="cpu"):
    """One pass of training steps over `plan` (lists of utterance ids) with batches from `num_workers`
    loader processes (0: on this thread): wall seconds, the loader's wait, audio seconds per second."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    clock, audio = WaitClock(), 0.0
    loader = batch_loader(dataset, plan, num_workers, prefetch_factor, pin_memory=False)
    for batch in clock.timed(loader):
        _, x, xl, y, yl = batch
        loss, _ = model(x.to(device), xl.to(device), y.to(device), yl.to(device))
        loss.backward()
        opt.step()
        opt.zero_grad()
        audio += audio_seconds(batch)
    s = clock.summary()
    return {**s, "num_workers": num_workers, "steps": clock.steps,
            "audio_seconds_per_wall_second": audio / s["loop_seconds"]}


def synthetic_batches(n_batches, batch_bins, input_size, vocab_size, seconds=(2.0, 6.0), tokens_per_second=4.0,
                      device="cpu"):
    """Random feature batches of `batch_bins` padded frames with lengths across `seconds`, and random
    token targets: the same tensors for every variant (for timing only)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for b in range(n_batches):
        longest = seconds[0] + (seconds[1] - seconds[0]) * (b + 1) / n_batches
        frames = int(longest * FRAMES_PER_SECOND)
        size = max(1, batch_bins // frames)
        lens = torch.linspace(frames * 0.8, frames, size).long()
        x = torch.randn(size, frames, input_size, generator=gen)
        ylen = (lens.float() / FRAMES_PER_SECOND * tokens_per_second).long().clamp_min(1)
        y = torch.randint(1, vocab_size - 1, (size, int(ylen.max())), generator=gen)
        out.append((None, x.to(device), lens.to(device), y.to(device), ylen.to(device)))
    return out
