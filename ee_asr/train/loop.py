"""The training loop: multi-exit loss, accumulation, clipping, validation, epoch checkpoints and
resume. The experiment around it (config, exp dir) is set up by train/experiment.py."""

import logging
import math
import random
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed
from tqdm import tqdm

from ee_asr.common.errors import UserError
from ee_asr.data.batching import epoch_batches, make_batches
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.loader import WaitClock, batch_loader, pin_wanted, to_device
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.models.load import init_from_model
from ee_asr.models.registry import build_model
from ee_asr.train import distributed as ddp
from ee_asr.train.amp import MixedPrecision
from ee_asr.train.checkpoint import CheckpointManager
from ee_asr.train.lr_schedule import PiecewiseLinearLR
from ee_asr.train.optim import build_optimizer, build_scheduler
from ee_asr.train.validate import validate

FINAL_MODEL = "model.pth"


def rng_state():
    """Every random generator that training draws from (stochastic depth, SpecAugment, dropout)."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def gather_objects(info, obj):
    """One object per rank, on every rank (all ranks must call)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


def restore_rng(states, info):
    """Set this rank's generators to those a checkpoint recorded, so that the resumed run draws
    exactly what the uninterrupted one would have."""
    if not states:
        logging.warning("the checkpoint holds no random generator states (written by an older version): "
                        "the resumed run will not repeat an uninterrupted one bit for bit")
        return
    if len(states) != info.world_size:
        logging.warning("the checkpoint was written by %d ranks, this run has %d: random generators are "
                        "restored from rank 0's, the run will not repeat an uninterrupted one bit for bit",
                        len(states), info.world_size)
    state = states[info.rank] if len(states) == info.world_size else states[0]
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_split_batches(dataset, config):
    keep = {u: n for u, n in dataset.lengths.items() if n >= config["min_frames"]}
    dropped = len(dataset.lengths) - len(keep)
    if dropped:
        logging.warning("dropped %d utterances shorter than min_frames=%d", dropped, config["min_frames"])
    return make_batches(keep, config["batch_bins"], config.get("max_batch_size"))


class Trainer:
    def __init__(self, config, exp_dir, train_dir, valid_dir, device):
        self.config, self.exp_dir, self.device = config, Path(exp_dir), device
        self.dist = ddp.init_distributed(device.type)
        torch.manual_seed(config["seed"])
        random.seed(config["seed"])
        np.random.seed(config["seed"])
        self.tokenizer = Tokenizer(config["bpemodel"])
        self.train_set = FeatureDataset(train_dir, self.tokenizer, config["speed_perturb_factors"], config["seed"])
        self.valid_set = FeatureDataset(valid_dir, self.tokenizer)
        self.train_batches = make_split_batches(self.train_set, config)
        self.valid_batches = make_split_batches(self.valid_set, config)
        self.model = build_model(config).to(device)
        self.optimizer = build_optimizer(config, self.model.parameters())
        self.amp = MixedPrecision.from_config(config, device.type)
        updates = self.planned_updates()
        self.scheduler = build_scheduler(config, self.optimizer, updates)
        self.warn_if_schedule_ends_elsewhere(updates)
        self.ckpt = CheckpointManager(self.exp_dir, config["keep_nbest_models"], self.criterion_key(config))
        self.epoch, self.step, self.history = 0, 0, []
        self.wrapped = self.model
        if self.dist.is_main and self.amp.enabled:
            logging.info("mixed precision: %s", self.amp.describe())
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            # a block that stochastic depth skips has no gradients in that step; without being told,
            # DDP waits for them forever
            skips = any(getattr(m, "stochastic_depth_rate", 0) > 0 for m in self.model.modules())
            self.wrapped = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids,
                                                                     find_unused_parameters=skips)
        self.writer = None
        if self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.exp_dir / "tensorboard"))

    def planned_updates(self):
        """Optimizer updates in the whole run, counted as train_epoch makes them (batches per rank)."""
        cfg = self.config
        batches = len(epoch_batches(self.train_batches, 0, cfg["seed"], self.dist.rank, self.dist.world_size))
        return math.ceil(batches / cfg["accum_grad"]) * cfg["max_epoch"]

    def warn_if_schedule_ends_elsewhere(self, updates):
        """piecewise_linear is planned for a number of updates; one that ends before the run holds
        its last lr for the rest, one that ends after it stops at a high lr. Either is legal, but
        usually means max_epoch or the data changed and the schedule's steps did not (`last`
        as the final step avoids this)."""
        if not isinstance(self.scheduler, PiecewiseLinearLR):
            return
        cfg = self.config
        if self.scheduler.steps[-1] != updates and self.dist.is_main:
            logging.warning("scheduler_conf steps end at update %d, but this run makes %d (%d epochs of %d)",
                            self.scheduler.steps[-1], updates, cfg["max_epoch"], updates // cfg["max_epoch"])

    def criterion_key(self, config):
        """The validation stat that ranks epochs (load_config has checked the value)."""
        return f"cer_exit{self.model.exit_layers[-1]}" if config["best_criterion"] == "cer" else "loss"

    def resume_from_checkpoint(self):
        """Restore the training state of the latest epoch checkpoint, or, for a fresh run, the
        initial weights (pretrained encoder, init_param). The one place where a run resumes."""
        state, path = self.ckpt.resume_state()
        if state is None:
            if self.config.get("pretrained"):
                # resolve_config has checked that the encoder is one that can (wav2vec2_ee)
                self.model.encoder.load_pretrained(self.config["pretrained"])
                logging.info("encoder initialised from %s", self.config["pretrained"])
            if self.config.get("init_param"):
                init_from_model(self.model, self.config["init_param"])
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        self.amp.load_state_dict(state.get("amp"), path)
        self.restore_batches(state.get("batches"), path)
        restore_rng(state.get("rng"), self.dist)
        logging.info("resumed from %s after epoch %d (step %d)", path, self.epoch, self.step)

    def restore_batches(self, batches, path):
        """The checkpoint's batches, so that a resumed run sees the batch order an uninterrupted one
        would, even if the batching code or the order of the data lists changed meanwhile."""
        if batches is None or batches == self.train_batches:
            return
        missing = sorted({u for b in batches for u in b} - set(self.train_set.lengths))
        if missing:
            raise UserError(f"{path} was trained on utterance '{missing[0]}' (and {len(missing) - 1} more) that "
                            f"the training data no longer has: resume on the same data, or train a new experiment")
        logging.warning("the training batches differ from those %s was trained with (batch_bins or the data "
                        "lists changed?): continuing with the checkpoint's batches", path)
        self.train_batches = batches

    def train_epoch(self):
        cfg = self.config
        batches = epoch_batches(self.train_batches, self.epoch, cfg["seed"], self.dist.rank, self.dist.world_size)
        self.wrapped.train()
        def bar(items):
            return tqdm(items, desc=f"epoch {self.epoch + 1}/{cfg['max_epoch']}", disable=not self.dist.is_main,
                        mininterval=5, unit="batch")

        running, start = {}, time.time()
        pin = pin_wanted(self.device)
        self.train_set.set_epoch(self.epoch)  # before the workers start: they copy the dataset
        loader = batch_loader(self.train_set, batches, cfg["num_workers"], cfg["prefetch_factor"], pin)
        self.wait_clock = WaitClock()
        for i, batch in enumerate(self.wait_clock.timed(bar(loader))):
            _, x, xl, y, yl = to_device(batch, self.device, non_blocking=pin)
            last_of_group = (i + 1) % cfg["accum_grad"] == 0 or i + 1 == len(batches)
            # Skip the gradient all-reduce on accumulation steps; DDP syncs on the last one.
            sync = self.wrapped.no_sync() if self.dist.enabled and not last_of_group else nullcontext()
            with sync:
                with self.amp.autocast():
                    loss, stats = self.wrapped(x, xl, y, yl)
                self.amp.backward(loss / cfg["accum_grad"])
            for k, v in stats.items():
                running[k] = running.get(k, 0.0) + float(v)
            if not last_of_group:
                continue
            self.amp.unscale(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg["grad_clip"])
            finite = bool(torch.isfinite(norm))
            self.amp.step(self.optimizer, finite)
            if not finite:
                logging.warning("step %d: gradient norm is %s, update skipped", self.step, norm)
            self.optimizer.zero_grad()
            if self.scheduler is not None:
                self.scheduler.step()
            self.step += 1
            if self.step % cfg["log_interval"] == 0 and self.dist.is_main:
                self.log_train(running, i + 1, len(batches), start)
        return {k: v / max(len(batches), 1) for k, v in running.items()}

    def log_train(self, running, done, total, start):
        avg = {k: v / done for k, v in running.items()}
        rate = done / (time.time() - start)
        eta = (total - done) / rate if rate > 0 else math.inf
        lr = self.optimizer.param_groups[0]["lr"]
        exits = " ".join(f"{k}={v:.2f}" for k, v in avg.items() if k.startswith("loss_exit"))
        logging.info("epoch %d step %d: loss=%.2f %s lr=%.2e %.2f batch/s eta %.0fs",
                     self.epoch + 1, self.step, avg["loss"], exits, lr, rate, eta)
        for k, v in avg.items():
            self.writer.add_scalar(f"train/{k}", v, self.step)
        self.writer.add_scalar("train/lr", lr, self.step)

    def run(self):
        """Train the epochs left (after resume_from_checkpoint, which the set-up calls first)."""
        cfg = self.config
        if self.epoch >= cfg["max_epoch"] and self.dist.is_main:
            logging.info("already trained for %d epochs", self.epoch)
        while self.epoch < cfg["max_epoch"]:
            start = time.time()
            train_stats = self.train_epoch()
            waits = self.wait_clock.summary()
            self.epoch += 1
            self.check_replicas()
            # every rank's generators as the next epoch starts with them (validation draws none)
            self.rng_states = gather_objects(self.dist, rng_state())
            if self.dist.is_main:
                valid = validate(self.model, self.valid_set, self.valid_batches, self.tokenizer, self.device)
                self.history.append({"epoch": self.epoch, "train": train_stats, "valid": valid,
                                     "seconds": time.time() - start, **waits})
                logging.info("epoch %d: waited %.1fs for batches in %.1fs of training steps (%.1f%%, %d workers)",
                             self.epoch, waits["loader_wait_seconds"], waits["loop_seconds"],
                             100 * waits["loader_wait_fraction"], cfg["num_workers"])
                self.save_epoch()
                cers = " ".join(f"{k}={v:.1f}" for k, v in valid.items() if k.startswith("cer_exit"))
                logging.info("epoch %d done in %.0fs: valid loss=%.2f %s", self.epoch, time.time() - start,
                             valid["loss"], cers)
                for k, v in valid.items():
                    self.writer.add_scalar(f"valid/{k}", v, self.epoch)
            ddp.barrier(self.dist)
        if self.dist.is_main:
            self.ckpt.average_best(self.history, self.exp_dir / FINAL_MODEL)

    def check_replicas(self):
        if not self.dist.enabled:
            return
        digests = ddp.gather_digests(self.dist, ddp.parameter_digest(self.model))
        logging.info("rank %d parameter digests after epoch %d: %s", self.dist.rank, self.epoch, " ".join(digests))
        if len(set(digests)) != 1:
            raise RuntimeError(f"DDP replicas diverged after epoch {self.epoch}: {digests}")

    def save_epoch(self):
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                 "epoch": self.epoch, "step": self.step, "history": self.history,
                 "batches": self.train_batches, "rng": self.rng_states, "amp": self.amp.state_dict()}
        self.ckpt.save_epoch(self.epoch, self.model.state_dict(), state, self.history)
