"""Mixed precision for training, ESPnet's `use_amp: true` and icefall's `--use-fp16`.

bfloat16 autocast is the default where the device has it (recent GPUs, every CPU): it keeps
float32's exponent range, so it needs no loss scaling. float16 (`amp_dtype: float16`, or a GPU
without bfloat16) needs a gradient scaler, whose scale is part of the training state: it goes
into the checkpoint, so that a resumed run scales (and skips) exactly as an uninterrupted one.
The losses themselves (CTC, log-softmax) are computed in float32 by the models
(models/ctc_ee.py: float32_region); decoding never runs under autocast.
"""

import logging
from contextlib import nullcontext

import torch

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def bf16_supported(device_type):
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device_type == "cpu"


class MixedPrecision:
    """Autocast, the gradient scaler and its checkpoint state for one training run; with
    `enabled=False` every method is what plain float32 training does."""

    def __init__(self, enabled, dtype_name, device_type):
        self.device_type = device_type
        self.enabled = bool(enabled)
        dtype = AMP_DTYPES[dtype_name]
        if self.enabled and dtype is torch.bfloat16 and not bf16_supported(device_type):
            logging.warning("use_amp: this %s has no bfloat16; training in float16 with a gradient scaler",
                            device_type)
            dtype = torch.float16
        self.dtype = dtype
        # float16's 5-bit exponent underflows small gradients; the scaler lifts them into range
        self.scaler = torch.amp.GradScaler(device_type, enabled=self.enabled and dtype is torch.float16)

    @classmethod
    def from_config(cls, config, device_type):
        return cls(config.get("use_amp", False), config.get("amp_dtype", "bfloat16"), device_type)

    def describe(self):
        if not self.enabled:
            return "float32"
        return f"{str(self.dtype).replace('torch.', '')} autocast" + (
            " with a gradient scaler" if self.scaler.is_enabled() else "")

    def autocast(self):
        if not self.enabled:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss):
        self.scaler.scale(loss).backward()

    def unscale(self, optimizer):
        """Before clipping: the gradients back at their true size (a no-op without a scaler)."""
        if self.scaler.is_enabled():
            self.scaler.unscale_(optimizer)

    def step(self, optimizer, finite):
        """The optimizer step when the gradient norm is finite, and the scaler's update (which
        lowers the scale after an overflow, so the next steps can succeed)."""
        if self.scaler.is_enabled():
            if finite:
                self.scaler.step(optimizer)
            self.scaler.update()
        elif finite:
            optimizer.step()

    def state_dict(self):
        return self.scaler.state_dict()

    def load_state_dict(self, state, path):
        """`state`: what state_dict wrote ({} without a scaler, None from an older checkpoint)."""
        if state:
            if self.scaler.is_enabled():
                self.scaler.load_state_dict(state)
            else:
                logging.warning("%s was trained with a float16 gradient scaler; this run has none", path)
        elif self.scaler.is_enabled():
            logging.warning("%s holds no gradient scaler state: the scale starts afresh, the run will not "
                            "repeat an uninterrupted one bit for bit", path)
