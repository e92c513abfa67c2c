"""Epoch checkpoints: written atomically, resumed from, pruned to the N best, averaged."""

import json
import logging
from pathlib import Path

import torch

from ee_asr.common.atomic import atomic_path, atomic_write_text


def save(obj, path):
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


class CheckpointManager:
    """`<exp>/checkpoints/epoch{N}.pth` (model weights), `latest.pth` (full training state),
    and `history.json` (per-epoch validation stats) that decides which epochs are best."""

    def __init__(self, exp_dir, keep_nbest, criterion="loss"):
        self.dir = Path(exp_dir) / "checkpoints"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keep_nbest = keep_nbest
        self.criterion = criterion  # a validation stat to minimise: loss, or cer_exit{L}

    @property
    def latest(self):
        return self.dir / "latest.pth"

    def resume_state(self):
        return load(self.latest) if self.latest.exists() else None

    def save_epoch(self, epoch, model_state, train_state, history):
        save(model_state, self.dir / f"epoch{epoch}.pth")
        # Order matters for resume: the epoch's weights exist before `latest` names that epoch.
        save(train_state, self.latest)
        atomic_write_text(self.dir / "history.json", json.dumps(history, indent=1))
        for stale in self._prunable(history):
            (self.dir / f"epoch{stale}.pth").unlink(missing_ok=True)

    def best_epochs(self, history):
        ranked = sorted(history, key=lambda h: (h["valid"][self.criterion], -h["epoch"]))
        return [h["epoch"] for h in ranked[: self.keep_nbest]]

    def _prunable(self, history):
        best = set(self.best_epochs(history))
        return [h["epoch"] for h in history if h["epoch"] not in best and h["epoch"] != history[-1]["epoch"]]

    def average_best(self, history, out_path):
        epochs = self.best_epochs(history)
        avg = None
        for e in epochs:
            state = load(self.dir / f"epoch{e}.pth")
            if avg is None:
                avg = {k: v.clone().double() if v.is_floating_point() else v.clone() for k, v in state.items()}
            else:
                for k, v in state.items():
                    if v.is_floating_point():
                        avg[k] += v.double()
        for k, v in avg.items():
            if v.is_floating_point():
                avg[k] = (v / len(epochs)).float()
        save(avg, out_path)
        logging.info("averaged epochs %s (best by validation %s) into %s", epochs, self.criterion, out_path)
        return epochs
