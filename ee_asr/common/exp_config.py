"""`exp/<tag>/config.yaml`: the resolved configuration that training writes and that every later
step (resuming, decoding, transcribing, exporting) reads. One reader and one writer for all."""

from pathlib import Path

import yaml

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.errors import UserError

EXP_CONFIG = "config.yaml"


def exp_config_path(exp_dir):
    return Path(exp_dir) / EXP_CONFIG


def read_exp_config(exp_dir):
    path = exp_config_path(exp_dir)
    if not path.is_file():
        raise UserError(f"{path} does not exist: train the model first (stage 4)")
    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid YAML ({e}); restore it or retrain (stage 4)") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: not a training configuration (the top level is not a mapping)")
    return config


def write_exp_config(config, exp_dir):
    atomic_write_text(exp_config_path(exp_dir), yaml.safe_dump(config, sort_keys=False))
