"""The value schema of a training config: each key's type and range, checked before any work.

One table, ESPnet/typeguard style: a wrong value (`max_epoch: three`, `lr: "0.002"`,
`grad_clip: [5.0]`, `batch_bins: -5`) fails at once naming the key, the value and what is
expected, instead of a torch traceback after the first batch or a run that silently does
something else. Component names (`encoder: ...`) and `*_conf` keys are checked against the
registries by optim.check_training_config; this table adds the values.
"""

import math

from ee_asr.common.errors import UserError


class Number:
    """An int (`integer=True`) or a real number within [lo, hi]; `lo_open`: lo itself excluded."""

    def __init__(self, integer=False, lo=None, hi=None, lo_open=False, optional=False):
        self.integer, self.lo, self.hi, self.lo_open, self.optional = integer, lo, hi, lo_open, optional

    def describe(self):
        kind = "an integer" if self.integer else "a number"
        if self.lo is not None and self.hi is not None:
            kind += f" in {'(' if self.lo_open else '['}{self.lo}, {self.hi}]"
        elif self.lo is not None:
            kind += f" {'>' if self.lo_open else '>='} {self.lo}"
        return kind + (" or null" if self.optional else "")

    def ok(self, v):
        if v is None:
            return self.optional
        # bool is an int in Python, but `max_epoch: yes` is a mistake, not 1
        if isinstance(v, bool) or not isinstance(v, int if self.integer else (int, float)):
            return False
        if not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or v <= self.hi


class Choice:
    def __init__(self, *choices):
        self.choices = choices

    def describe(self):
        return "one of " + ", ".join(str(c) for c in self.choices)

    def ok(self, v):
        return v in self.choices


class Text:
    def __init__(self, optional=False):
        self.optional = optional

    def describe(self):
        return "a string" + (" or null" if self.optional else "")

    def ok(self, v):
        return isinstance(v, str) and v != "" or (v is None and self.optional)


class Flag:
    def describe(self):
        return "true or false"

    def ok(self, v):
        return isinstance(v, bool)


class Factors:
    def describe(self):
        return "a list of positive numbers or null"

    def ok(self, v):
        return v is None or (isinstance(v, list) and len(v) > 0 and all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) and f > 0 for f in v))


class Mapping:
    def describe(self):
        return "a mapping (key: value) or null"

    def ok(self, v):
        return v is None or isinstance(v, dict)


INT_POS, REAL_POS = Number(integer=True, lo=1), Number(lo=0, lo_open=True)
RATE = Number(lo=0, hi=1)
SCHEMA = {
    "model": Text(), "encoder": Text(), "normalize": Text(optional=True), "specaug": Text(optional=True),
    "optim": Text(), "scheduler": Text(optional=True),
    "model_conf": Mapping(), "encoder_conf": Mapping(), "normalize_conf": Mapping(), "specaug_conf": Mapping(),
    "optim_conf": Mapping(), "scheduler_conf": Mapping(),
    "max_epoch": INT_POS, "batch_bins": INT_POS, "max_batch_size": Number(integer=True, lo=1, optional=True),
    "accum_grad": INT_POS, "grad_clip": REAL_POS, "keep_nbest_models": INT_POS,
    "best_criterion": Choice("loss", "cer"), "seed": Number(integer=True, lo=0), "log_interval": INT_POS,
    "num_threads": INT_POS, "min_frames": Number(integer=True, lo=0),
    "pretrained": Text(optional=True), "init_param": Text(optional=True),
    "use_amp": Flag(), "amp_dtype": Choice("bfloat16", "float16"), "num_workers": Number(integer=True, lo=0),
    "prefetch_factor": INT_POS, "speed_perturb_factors": Factors(),
    # nested values that reach torch unchecked otherwise
    "optim_conf.lr": REAL_POS, "optim_conf.weight_decay": Number(lo=0),
    "scheduler_conf.warmup_steps": Number(integer=True, lo=0),
    "encoder_conf.output_size": INT_POS, "encoder_conf.num_blocks": INT_POS,
    "encoder_conf.attention_heads": INT_POS, "encoder_conf.linear_units": INT_POS,
    "encoder_conf.dropout_rate": RATE, "model_conf.ctc_weight": RATE, "model_conf.lsm_weight": RATE,
}


def _hint(value):
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        # PyYAML reads 1e-3 (no dot) and quoted numbers as strings
        return (f" (the string {value!r}: write a number without quotes; YAML reads 1e-3 as a string, "
                f"1.0e-3 as a number)")
    if isinstance(value, list) and len(value) == 1:
        return " (a list: write the value without brackets)"
    return ""


def check_config_values(config, source="config"):
    """Raise UserError for the first value that does not fit SCHEMA; `source` names the file."""
    for key, spec in SCHEMA.items():
        parent, _, child = key.rpartition(".")
        node = config.get(parent) if parent else config
        if not isinstance(node, dict) or child not in node:
            continue
        value = node[child]
        if not spec.ok(value):
            raise UserError(f"{source}: {key}: expected {spec.describe()}, got {value!r}{_hint(value)}")
