"""Optimizers and learning-rate schedules chosen by name (`optim: adamw`, `scheduler: warmuplr`)."""

import torch
from espnet2.schedulers.noam_lr import NoamLR
from espnet2.schedulers.warmup_lr import WarmupLR

from ee_asr.models.registry import check_choice, check_model_config, choose

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
# Both step once per update: WarmupLR is lr * min(step/warmup^1.5, 1/sqrt(step)) * sqrt(warmup),
# NoamLR the same scaled by model_size^-0.5 (the Transformer paper's schedule).
SCHEDULERS = {"warmuplr": WarmupLR, "noam": NoamLR}


def build_optimizer(config, params):
    return choose("optim", OPTIMIZERS, config["optim"], config.get("optim_conf"), params=params)


def build_scheduler(config, optimizer):
    return choose("scheduler", SCHEDULERS, config.get("scheduler"), config.get("scheduler_conf"),
                  optimizer=optimizer)


def check_training_config(config):
    """Every component name and key of a training config, checked before any data is read."""
    check_model_config(config)
    check_choice("optim", OPTIMIZERS, config["optim"], config.get("optim_conf"), ("params",))
    check_choice("scheduler", SCHEDULERS, config.get("scheduler"), config.get("scheduler_conf"), ("optimizer",))
