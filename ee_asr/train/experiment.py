"""Setting up a training experiment: the config checked and resolved against the data (with the
digests of the token model and CMVN file), the exp dir locked and checked (same configuration
when resuming) and its config.yaml written; then the loop (train/loop.py) runs."""

import logging
import os
from contextlib import nullcontext
from pathlib import Path

import torch

from ee_asr.common.atomic import make_output_dir
from ee_asr.common.errors import UserError
from ee_asr.common.exp_config import (
    ASSET_KEY,
    ASSETS,
    asset_paths,
    exp_config_path,
    read_exp_config,
    record_asset_digests,
    write_exp_config,
)
from ee_asr.common.lock import DirLock
from ee_asr.data.cmvn import check_stats_file
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.train import distributed as ddp
from ee_asr.train.checkpoint import CheckpointManager
from ee_asr.train.config import DEFAULTS
from ee_asr.train.loop import FINAL_MODEL, Trainer
from ee_asr.train.optim import check_training_config
from ee_asr.train.schema import check_config_values


def resolve_config(config, train_dir, bpemodel, cmvn):
    """Fill in what the data decides: input size, vocabulary, the CMVN statistics file."""
    config = dict(config)
    train = FeatureDataset(train_dir)
    first = next(iter(train.lengths))
    config["input_size"] = int(train.feats[first].shape[1])
    tokenizer = Tokenizer(bpemodel)
    config["vocab_size"] = tokenizer.vocab_size
    config["bpemodel"] = str(Path(bpemodel).resolve())
    config["token_list"] = tokenizer.token_list
    if config.get("normalize") == "global_mvn":
        if cmvn is None or not Path(cmvn).is_file():
            raise UserError(f"normalize: global_mvn needs the CMVN statistics file, not found: {cmvn}")
        check_stats_file(cmvn)
        config["normalize_conf"] = {**(config.get("normalize_conf") or {}), "stats_file": str(Path(cmvn).resolve())}
    if config.get("init_param"):
        config["init_param"] = str(Path(config["init_param"]).resolve())
    if config.get("pretrained"):
        if config["encoder"] != "wav2vec2_ee":
            raise UserError(f"pretrained: encoder {config['encoder']} cannot load a pre-trained checkpoint "
                            f"(wav2vec2_ee can)")
        # The checkpoint's architecture goes into the resolved config, so that decoding rebuilds
        # the model from config.yaml alone; keys the user set (dropouts, masking) win.
        config["pretrained"] = str(Path(config["pretrained"]).resolve())
        # imported here, as the registry imports encoders: a Conformer run never loads transformers
        from ee_asr.models.wav2vec2_ee import read_pretrained_config

        enc = dict(config.get("encoder_conf") or {})
        enc["hf_config"] = {**read_pretrained_config(config["pretrained"]), **(enc.get("hf_config") or {})}
        config["encoder_conf"] = enc
    return config


# Keys that may change between a run and its resumption: more epochs, other logging. Not
# keep_nbest_models or best_criterion: the epochs already pruned were chosen by their old values.
# Where batches are read (workers, prefetch) changes nothing they hold.
RESUMABLE_CHANGES = ("max_epoch", "log_interval", "num_threads", "num_workers", "prefetch_factor")


def check_same_experiment(config, exp_dir):
    """Refuse to resume checkpoints that another configuration wrote."""
    if not exp_config_path(exp_dir).is_file() or not CheckpointManager.has_state_in(exp_dir):
        return
    old = read_exp_config(exp_dir)
    if ASSET_KEY not in old:  # written before digests were recorded: nothing to compare
        config = {k: v for k, v in config.items() if k != ASSET_KEY}
    for role, digest in (old.get(ASSET_KEY) or {}).items():
        if (config.get(ASSET_KEY) or {}).get(role) != digest:
            raise UserError(f"{exp_dir} holds checkpoints trained with another {ASSETS[role]} than "
                            f"{asset_paths(config).get(role)} (sha256 differs from the one in "
                            f"{exp_config_path(exp_dir)}): restore that file, or train with a new --tag")
    changed = sorted(k for k in set(old) | set(config)
                     if k not in RESUMABLE_CHANGES and old.get(k, DEFAULTS.get(k)) != config.get(k))
    if changed:
        raise UserError(f"{exp_dir} holds checkpoints of another configuration (differs in: "
                        f"{', '.join(changed)}); give a new --tag or remove {exp_dir}")


def train(config, exp_dir, train_dir, valid_dir, bpemodel, cmvn=None, device="cpu"):
    exp_dir = Path(exp_dir)
    check_config_values(config)
    check_training_config(config)
    make_output_dir(exp_dir, probe=True)
    # One training per exp dir: a second one refuses, naming the first. Only rank 0 holds the lock
    # (ranks of one run share the dir by design).
    main_rank = int(os.environ.get("RANK", "0")) == 0
    with DirLock(exp_dir, "training") if main_rank else nullcontext():
        torch.set_num_threads(config["num_threads"])
        config = record_asset_digests(resolve_config(config, train_dir, bpemodel, cmvn))
        check_same_experiment(config, exp_dir)
        trainer = Trainer(config, exp_dir, train_dir, valid_dir, torch.device(device))
        # before config.yaml is rewritten: a run that cannot resume changes nothing in the exp dir
        trainer.resume_from_checkpoint()
        # every rank must start from the same epoch (a node without the shared filesystem would not)
        ddp.check_resume_point(trainer.dist, trainer.epoch, trainer.step,
                               trainer.ckpt.latest if trainer.epoch else "no checkpoint")
        if trainer.dist.is_main:
            write_exp_config(config, exp_dir)
            n = sum(p.numel() for p in trainer.model.parameters())
            logging.info("model has %.2fM parameters, exits at layers %s", n / 1e6, trainer.model.exit_layers)
        trainer.run()
    return exp_dir / FINAL_MODEL
