"""Training configuration: YAML with defaults, checked (keys here, values in train/schema.py) before any work starts."""

from pathlib import Path

import yaml

from ee_asr.common.errors import UserError
from ee_asr.common.yaml_file import read_yaml_mapping
from ee_asr.train.schema import check_config_values

DEFAULTS = {
    "model": "ctc_ee",
    "model_conf": {},
    "encoder": "conformer_ee",
    "encoder_conf": {},
    "normalize": "global_mvn",
    "normalize_conf": {},
    "specaug": None,
    "specaug_conf": {},
    "optim": "adamw",
    "optim_conf": {"lr": 0.001},
    "scheduler": "warmuplr",
    "scheduler_conf": {"warmup_steps": 1000},
    "max_epoch": 10,
    "batch_bins": 20000,      # padded input frames per batch (per rank)
    "max_batch_size": None,
    "accum_grad": 1,
    "grad_clip": 5.0,
    "keep_nbest_models": 5,   # checkpoints kept by best_criterion and averaged
    "best_criterion": "loss",  # validation stat to minimise: loss, or cer (the last exit's CER)
    "seed": 0,
    "log_interval": 20,
    "num_threads": 1,         # torch threads per process: 1 is faster than 2 on a loaded 2-core box
    "min_frames": 20,          # shorter inputs are dropped (frames, or samples for raw audio)
    "pretrained": None,        # Hugging Face checkpoint dir to initialise the encoder from (fine-tuning)
    "init_param": None,        # an ee-asr model.pth to start from (fine-tuning); weights of the same name and shape
    "use_amp": False,          # mixed precision (train/amp.py): autocast in amp_dtype, losses in float32
    "amp_dtype": "bfloat16",   # or float16, with a gradient scaler (also where a GPU has no bfloat16)
    "num_workers": 0,          # processes that read and pad batches (data/loader.py); 0: the training thread
    "prefetch_factor": 2,      # batches each worker keeps ready
    "speed_perturb_factors": None,  # e.g. [0.9, 1.0, 1.1]: one drawn per utterance and epoch (on-the-fly dumps)
}
# Written by the trainer into the resolved config; a user config may not set them.
DERIVED = ("input_size", "vocab_size", "bpemodel", "token_list")


def load_config(path, overrides=None):
    path = Path(path)
    user = read_yaml_mapping(path)
    for key in list(user) + list(overrides or {}):
        if key not in DEFAULTS:
            raise UserError(f"{path}: unknown key '{key}' (known: {', '.join(DEFAULTS)})")
    config = {**DEFAULTS, **user, **(overrides or {})}
    check_config_values(config, path)
    return config


def parse_set(assignments):
    """`--set encoder_conf.num_blocks=4` style overrides -> (dotted key, YAML-parsed value) pairs."""
    out = []
    for item in assignments or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. encoder_conf.num_blocks=4")
        try:
            out.append((key, yaml.safe_load(value)))
        except yaml.YAMLError as e:
            raise UserError(f"--set {item!r}: the value is not valid YAML: {e}") from None
    return out


def apply_sets(config, sets):
    """Apply parse_set pairs; the top-level key must be known, nested mappings are created."""
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    for key, value in sets:
        parts = key.split(".")
        if parts[0] not in DEFAULTS:
            raise UserError(f"--set {key}: unknown key '{parts[0]}' (known: {', '.join(DEFAULTS)})")
        node = config
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise UserError(f"--set {key}: '{part}' is not a mapping")
            node[part] = dict(node[part])
            node = node[part]
        node[parts[-1]] = value
    return config
