"""Rebuild a trained model from `exp/<tag>/config.yaml` and its weights: decoding reads only these."""

from pathlib import Path

import torch
import yaml

from ee_asr.common.errors import UserError
from ee_asr.models.registry import build_model


def read_exp_config(exp_dir):
    path = Path(exp_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"{path} does not exist: train the model first (stage 4)")
    return yaml.safe_load(path.read_text())


def load_trained(exp_dir, model_file="model.pth", device="cpu"):
    config = read_exp_config(exp_dir)
    path = Path(exp_dir) / model_file
    if not path.is_file():
        raise UserError(f"{path} does not exist: training has not finished (rerun stage 4 to resume)")
    model = build_model(config)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device).eval(), config
