"""Epoch checkpoints: written atomically with a digest, resumed from (the epoch before when the
latest is corrupt), pruned to the N best, averaged."""

import errno
import json
import logging
import os
import shutil
from pathlib import Path

import torch

from ee_asr.common.atomic import atomic_path, atomic_write_text, make_output_dir
from ee_asr.common.digest import file_sha256, sidecar, write_sidecar
from ee_asr.common.errors import UserError
from ee_asr.common.torch_file import load_torch_file


def _disk_full(path, e):
    """Whether a failed write is a full disk: torch reports one as 'file write failed'."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    return shutil.disk_usage(Path(path).parent).free < 1 << 20


def save(obj, path):
    """Write `path` and its `.sha256` beside it; a failed write (full disk) leaves the old file."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
            digest = file_sha256(tmp)
            # the old digest goes before the new file arrives: a crash in between leaves a file
            # without a digest (still loadable), never a good file that looks corrupt
            sidecar(path).unlink(missing_ok=True)
        write_sidecar(path, digest)
    except (OSError, RuntimeError) as e:
        if not _disk_full(path, e):
            raise
        raise UserError(f"cannot write {path}: {os.strerror(errno.ENOSPC)}") from None


def load(path):
    """Read a checkpoint checked against its digest; a bad file is a UserError naming it."""
    return load_torch_file(path, "a checkpoint", "truncated or corrupt", weights_only=False)


class CheckpointManager:
    """`<exp>/checkpoints/epoch{N}.pth` (model weights), `latest.pth` (full training state),
    and `history.json` (per-epoch validation stats) that decides which epochs are best."""

    def __init__(self, exp_dir, keep_nbest, criterion="loss"):
        self.dir = Path(exp_dir) / "checkpoints"
        make_output_dir(self.dir)
        self.keep_nbest = keep_nbest
        self.criterion = criterion  # a validation stat to minimise: loss, or cer_exit{L}

    @property
    def latest(self):
        return self.dir / "latest.pth"

    @property
    def previous(self):
        """The full training state of the epoch before the latest: the fallback when latest is bad."""
        return self.dir / "previous.pth"

    @staticmethod
    def has_state_in(exp_dir):
        """Whether `exp_dir` holds a training state to resume (without creating anything)."""
        d = Path(exp_dir) / "checkpoints"
        return (d / "latest.pth").is_file() or (d / "previous.pth").is_file()

    def resume_state(self):
        """(state, path) of the newest readable training state, or (None, None) for a fresh run."""
        tried = []
        for path in (self.latest, self.previous):
            if not path.is_file():
                continue
            try:
                state = load(path)
            except UserError as e:
                tried.append(str(e))
                continue
            if tried:
                logging.warning("%s; resuming from the epoch before it, %s (epoch %d)", tried[0], path, state["epoch"])
            return state, path
        if tried:
            raise UserError(f"no readable training state in {self.dir}: {'; '.join(tried)}. Remove {self.dir} to "
                            f"start the training again")
        return None, None

    def save_epoch(self, epoch, model_state, train_state, history):
        save(model_state, self.dir / f"epoch{epoch}.pth")
        # Order matters for resume: the epoch's weights exist before `latest` names that epoch, and
        # the state before it stays as `previous` until the new one is complete.
        if self.latest.is_file():
            sidecar(self.previous).unlink(missing_ok=True)
            os.replace(self.latest, self.previous)
            if sidecar(self.latest).is_file():
                os.replace(sidecar(self.latest), sidecar(self.previous))
        save(train_state, self.latest)
        atomic_write_text(self.dir / "history.json", json.dumps(history, indent=1))
        for stale in self._prunable(history):
            (self.dir / f"epoch{stale}.pth").unlink(missing_ok=True)
            sidecar(self.dir / f"epoch{stale}.pth").unlink(missing_ok=True)

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
