"""The training loop: multi-exit loss, accumulation, clipping, epoch checkpoints and resume."""

import logging
from contextlib import nullcontext
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ee_asr.common.errors import UserError
from ee_asr.data.batching import epoch_batches, make_batches
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.models.registry import build_model
from ee_asr.models.wav2vec2_ee import read_pretrained_config
from ee_asr.train import distributed as ddp
from ee_asr.train.checkpoint import CheckpointManager
from ee_asr.train.config import read_resolved, write_resolved
from ee_asr.train.lr_schedule import PiecewiseLinearLR
from ee_asr.train.optim import build_optimizer, build_scheduler, check_training_config
from ee_asr.train.validate import validate

FINAL_MODEL = "model.pth"


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
        enc = dict(config.get("encoder_conf") or {})
        enc["hf_config"] = {**read_pretrained_config(config["pretrained"]), **(enc.get("hf_config") or {})}
        config["encoder_conf"] = enc
    return config


def init_from_model(model, path):
    """Copy the weights of an ee-asr model.pth whose names and shapes match; say what did not."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"init_param: {path} does not exist")
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a file that is not a state dict
        raise UserError(f"init_param: {path} is not a model state dict: {e}") from None
    own = model.state_dict()
    taken = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not taken:
        raise UserError(f"init_param: no weight in {path} matches this model")
    model.load_state_dict(taken, strict=False)
    fresh = sorted(set(own) - set(taken))
    logging.info("initialised %d of %d tensors from %s; %d start fresh%s", len(taken), len(own), path,
                 len(fresh), f" (e.g. {', '.join(fresh[:3])})" if fresh else "")


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
        self.tokenizer = Tokenizer(config["bpemodel"])
        self.train_set = FeatureDataset(train_dir, self.tokenizer)
        self.valid_set = FeatureDataset(valid_dir, self.tokenizer)
        self.train_batches = make_split_batches(self.train_set, config)
        self.valid_batches = make_split_batches(self.valid_set, config)
        self.model = build_model(config).to(device)
        self.optimizer = build_optimizer(config, self.model.parameters())
        updates = self.planned_updates()
        self.scheduler = build_scheduler(config, self.optimizer, updates)
        self.warn_if_schedule_ends_elsewhere(updates)
        self.ckpt = CheckpointManager(self.exp_dir, config["keep_nbest_models"], self.criterion_key(config))
        self.epoch, self.step, self.history = 0, 0, []
        self.wrapped = self.model
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

    def resume(self):
        state = self.ckpt.resume_state()
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
        logging.info("resumed from %s after epoch %d (step %d)", self.ckpt.latest, self.epoch, self.step)

    def train_epoch(self):
        cfg = self.config
        batches = epoch_batches(self.train_batches, self.epoch, cfg["seed"], self.dist.rank, self.dist.world_size)
        self.wrapped.train()
        bar = tqdm(batches, desc=f"epoch {self.epoch + 1}/{cfg['max_epoch']}", disable=not self.dist.is_main,
                   mininterval=5, unit="batch")
        running, start = {}, time.time()
        for i, utts in enumerate(bar):
            _, x, xl, y, yl = self.train_set.collate(utts)
            x, xl, y, yl = x.to(self.device), xl.to(self.device), y.to(self.device), yl.to(self.device)
            last_of_group = (i + 1) % cfg["accum_grad"] == 0 or i + 1 == len(batches)
            # Skip the gradient all-reduce on accumulation steps; DDP syncs on the last one.
            sync = self.wrapped.no_sync() if self.dist.enabled and not last_of_group else nullcontext()
            with sync:
                loss, stats = self.wrapped(x, xl, y, yl)
                (loss / cfg["accum_grad"]).backward()
            for k, v in stats.items():
                running[k] = running.get(k, 0.0) + float(v)
            if not last_of_group:
                continue
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg["grad_clip"])
            if torch.isfinite(norm):
                self.optimizer.step()
            else:
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
        self.resume()
        ddp.check_resume_point(self.dist, self.epoch, self.step, self.ckpt.latest if self.epoch else "no checkpoint")
        cfg = self.config
        if self.epoch >= cfg["max_epoch"] and self.dist.is_main:
            logging.info("already trained for %d epochs", self.epoch)
        while self.epoch < cfg["max_epoch"]:
            start = time.time()
            train_stats = self.train_epoch()
            self.epoch += 1
            self.check_replicas()
            if self.dist.is_main:
                valid = validate(self.model, self.valid_set, self.valid_batches, self.tokenizer, self.device)
                self.history.append({"epoch": self.epoch, "train": train_stats, "valid": valid,
                                     "seconds": time.time() - start})
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
                 "epoch": self.epoch, "step": self.step, "history": self.history}
        self.ckpt.save_epoch(self.epoch, self.model.state_dict(), state, self.history)


# Keys that may change between a run and its resumption: more epochs, other logging. Not
# keep_nbest_models or best_criterion: the epochs already pruned were chosen by their old values.
RESUMABLE_CHANGES = ("max_epoch", "log_interval", "num_threads")


def check_same_experiment(config, exp_dir):
    """Refuse to resume checkpoints that another configuration wrote."""
    old_path = exp_dir / "config.yaml"
    if not old_path.is_file() or not (exp_dir / "checkpoints" / "latest.pth").is_file():
        return
    old = read_resolved(old_path)
    changed = sorted(k for k in set(old) | set(config)
                     if k not in RESUMABLE_CHANGES and old.get(k) != config.get(k))
    if changed:
        raise UserError(f"{exp_dir} holds checkpoints of another configuration (differs in: "
                        f"{', '.join(changed)}); give a new --tag or remove {exp_dir}")


def train(config, exp_dir, train_dir, valid_dir, bpemodel, cmvn=None, device="cpu"):
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config["num_threads"])
    check_training_config(config)
    config = resolve_config(config, train_dir, bpemodel, cmvn)
    check_same_experiment(config, exp_dir)
    trainer = Trainer(config, exp_dir, train_dir, valid_dir, torch.device(device))
    if trainer.dist.is_main:
        write_resolved(config, exp_dir / "config.yaml")
        n = sum(p.numel() for p in trainer.model.parameters())
        logging.info("model has %.2fM parameters, exits at layers %s", n / 1e6, trainer.model.exit_layers)
    trainer.run()
    return exp_dir / FINAL_MODEL
