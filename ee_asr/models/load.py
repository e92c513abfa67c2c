"""Rebuild a trained model from `exp/<tag>/config.yaml` and its weights: decoding reads only these;
and copy an earlier model's weights into a new one (fine-tuning's `init_param`)."""

import logging
from pathlib import Path

from ee_asr.common.errors import UserError
from ee_asr.common.exp_config import check_asset_digests, exp_config_path, read_exp_config
from ee_asr.common.torch_file import load_torch_file
from ee_asr.models.registry import build_model

__all__ = ["read_exp_config", "load_trained", "init_from_model"]


def load_trained(exp_dir, model_file="model.pth", device="cpu"):
    """The one loader of a trained experiment (decode, decode_policy, transcribe, benchmark, export):
    it checks that the token model and CMVN file are the ones the model was trained with."""
    config = read_exp_config(exp_dir)
    check_asset_digests(config, exp_dir)
    path = Path(exp_dir) / model_file
    if not path.is_file():
        raise UserError(f"{path} does not exist: training has not finished (rerun stage 4 to resume)")
    state = load_weights(path)
    model = build_model(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{path} does not fit the model of {exp_config_path(exp_dir)}: "
                        f"{str(e).splitlines()[0]}") from None
    return model.to(device).eval(), config


def load_weights(path):
    """A state dict checked against its recorded digest; never a raw torch error for a bad file."""
    return load_torch_file(path, "model weights", "it is truncated or not a model file; rerun stage 4 to rewrite it")


def init_from_model(model, path):
    """Copy the weights of an ee-asr model.pth whose names and shapes match; say what did not."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"init_param: {path} does not exist")
    source = load_torch_file(path, "a model state dict (init_param)", "give an ee-asr model.pth",
                             check_digest=False)
    own = model.state_dict()
    taken = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not taken:
        raise UserError(f"init_param: no weight in {path} matches this model")
    model.load_state_dict(taken, strict=False)
    fresh = sorted(set(own) - set(taken))
    logging.info("initialised %d of %d tensors from %s; %d start fresh%s", len(taken), len(own), path,
                 len(fresh), f" (e.g. {', '.join(fresh[:3])})" if fresh else "")
