"""Self-supervised pre-training of a Wav2Vec2 on untranscribed audio (wav2vec 2.0's objective).

transformers' `Wav2Vec2ForPreTraining` does the work: masked spans of the feature encoder's
frames (`_compute_mask_indices`), a gumbel-softmax quantizer of the unmasked frames as targets,
negatives drawn from the same utterance's masked frames (`_sample_negative_indices`), and the
contrastive loss plus the codebook diversity loss. The loop around it is ours: length-bucketed
batches of a stage-2 raw dump (its text is never read), per-utterance waveform normalisation as
the fine-tuning models do (`utterance_mvn`), a warm-up then linear decay of the lr, the gumbel
temperature annealed over the run, a resumable training state every `save_every` updates, and
at the end `save_pretrained` in Hugging Face format, which `--pretrained DIR` fine-tunes from.
"""

import json
import logging
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

from ee_asr.common.atomic import make_output_dir
from ee_asr.common.errors import UserError
from ee_asr.common.yaml_file import read_yaml_mapping
from ee_asr.data.batching import epoch_batches, make_batches
from ee_asr.data.dataset import FeatureDataset
from ee_asr.models.masks import valid_mask
from ee_asr.models.utterance_norm import UtteranceNorm
from ee_asr.models.wav2vec2_ee import lengths_for_feature_encoder, make_config, scale_branch_outputs
from ee_asr.train.checkpoint import load, save
from ee_asr.train.loop import restore_rng, rng_state

STATE = "pretrain_state.pth"
HF_DIR = "hf"


def arch_from_training_config(path):
    """(hf_config, branch_init_scale) of a wav2vec2_ee training YAML: pre-training builds the same
    architecture that the scratch and fine-tuning recipes train, so comparisons between them are fair."""
    path = Path(path)
    config = read_yaml_mapping(path, "architecture config")
    if config.get("encoder") != "wav2vec2_ee":
        raise UserError(f"{path}: not a wav2vec2_ee training config (encoder: wav2vec2_ee)")
    enc = config.get("encoder_conf") or {}
    if not isinstance(enc.get("hf_config"), dict):
        raise UserError(f"{path}: encoder_conf.hf_config (the Wav2Vec2 architecture) is missing")
    return dict(enc["hf_config"]), float(enc.get("branch_init_scale", 1.0))


def build_pretraining_model(hf_config, opts, branch_init_scale=1.0):
    """Wav2Vec2ForPreTraining of `hf_config`, with the quantizer and loss options of `opts`."""
    conf = {**hf_config, "num_negatives": opts["num_negatives"], "codevector_dim": opts["codevector_dim"],
            "proj_codevector_dim": opts["codevector_dim"], "num_codevectors_per_group": opts["codevectors_per_group"],
            "num_codevector_groups": opts["codevector_groups"], "diversity_loss_weight": opts["diversity_weight"],
            # Wav2Vec2Model owns masked_spec_embed (what a masked frame is replaced by) only when masking is on
            "mask_time_prob": opts["mask_prob"], "mask_time_length": opts["mask_length"]}
    model = Wav2Vec2ForPreTraining(make_config(conf))
    if branch_init_scale != 1.0:
        scale_branch_outputs(model.wav2vec2, branch_init_scale)
    return model


def lr_scale(step, warmup, total):
    """Linear warm-up to 1, then linear decay to 5% at `total`: what the fine-tuning recipes use."""
    if step < warmup:
        return (step + 1) / warmup
    return 1.0 - 0.95 * min(1.0, (step - warmup) / max(1, total - warmup))


def gumbel_temperature(step, total, start=2.0, end=0.5):
    """Annealed geometrically over the run, as wav2vec 2.0 does over its 400k updates."""
    return start * (end / start) ** min(1.0, step / max(1, total))


def masks_and_negatives(model, wave_lens, num_frames, opts):
    """The frames to mask and, for each, the negatives' indices: only valid frames of the same utterance."""
    frame_lens = model._get_feat_extract_output_lengths(wave_lens).long()
    valid = valid_mask(frame_lens, num_frames)
    mask = _compute_mask_indices((len(wave_lens), num_frames), opts["mask_prob"], opts["mask_length"],
                                 attention_mask=valid.long(), min_masks=2)
    negatives = _sample_negative_indices((len(wave_lens), num_frames), opts["num_negatives"], mask)
    return torch.from_numpy(mask), torch.from_numpy(negatives).long(), valid


class Pretrainer:
    def __init__(self, hf_config, train_dir, out_dir, opts, branch_init_scale=1.0):
        self.opts, self.out_dir = opts, Path(out_dir)
        torch.manual_seed(opts["seed"])
        random.seed(opts["seed"])
        np.random.seed(opts["seed"])
        self.data = FeatureDataset(train_dir)
        first = next(iter(self.data.lengths))
        if self.data.feats[first].shape[1] != 1:
            raise UserError(f"{train_dir}: pre-training reads the raw waveform (1 value a sample), not "
                            f"{self.data.feats[first].shape[1]}-dim features: give a --feats-type raw or "
                            f"raw_online dump")
        self.arch = dict(hf_config)
        self.model = build_pretraining_model(hf_config, opts, branch_init_scale)
        shortest = self.model.wav2vec2.config.mask_time_length + 1
        keep = {u: n for u, n in self.data.lengths.items()
                if int(self.model._get_feat_extract_output_lengths(torch.tensor(n))) > 2 * shortest}
        if not keep:
            raise UserError(f"{train_dir}: no utterance is long enough to mask spans of {opts['mask_length']} frames")
        if len(keep) < len(self.data.lengths):
            logging.warning("dropped %d utterances too short to mask", len(self.data.lengths) - len(keep))
        self.batches = make_batches(keep, opts["batch_bins"])
        self.norm = UtteranceNorm(norm_means=True, norm_vars=True)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=opts["lr"], betas=(0.9, 0.98),
                                           eps=1e-6, weight_decay=0.01)
        self.step = 0

    def resume(self):
        path = self.out_dir / STATE
        if not path.is_file():
            return
        state = load(path)
        if state["opts"] != self.opts or state["arch"] != self.arch:
            changed = sorted(k for k in set(state["opts"]) | set(self.opts) if state["opts"].get(k) != self.opts.get(k))
            raise UserError(f"{path} was written by a pre-training with other options ({', '.join(changed) or 'arch'}):"
                            f" give the same options, or another --out-dir")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        restore_rng(state["rng"], type("One", (), {"world_size": 1, "rank": 0})())
        logging.info("resumed from %s at update %d", path, self.step)

    def save_state(self):
        save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
              "opts": self.opts, "arch": self.arch, "rng": [rng_state()]}, self.out_dir / STATE)

    def batch_order(self):
        """(epoch, batch) for every update of the run: a resumed run continues the same sequence."""
        order, epoch = [], 0
        while len(order) < self.opts["max_updates"]:
            order += [(epoch, b) for b in epoch_batches(self.batches, epoch, self.opts["seed"])]
            epoch += 1
        return order[: self.opts["max_updates"]]

    def update(self, utts):
        opts = self.opts
        total = max(1, opts["max_updates"])
        _, x, xl, _, _ = self.data.collate(utts)
        x, _ = self.norm(x, xl)
        wave = x.squeeze(-1)
        frames = int(self.model._get_feat_extract_output_lengths(torch.tensor(wave.size(1))))
        mask, negatives, valid = masks_and_negatives(self.model, xl, frames, opts)
        scale = lr_scale(self.step, opts["warmup"], total)
        for group in self.optimizer.param_groups:
            group["lr"] = opts["lr"] * scale
        self.model.set_gumbel_temperature(gumbel_temperature(self.step, total))
        attention = valid_mask(xl, wave.size(1)).long()
        with lengths_for_feature_encoder(self.model.wav2vec2.feature_extractor, xl):
            out = self.model(wave, attention_mask=attention, mask_time_indices=mask,
                             sampled_negative_indices=negatives)
        n = mask.sum()  # the losses are sums over masked frames: per frame, a batch's size does not scale the step
        loss = out.loss / n
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), opts["grad_clip"])
        self.optimizer.step()
        self.step += 1
        return {"loss": loss.item(), "contrastive": (out.contrastive_loss / n).item(),
                "diversity": (out.diversity_loss / n).item(), "perplexity": out.codevector_perplexity.item()}

    def run(self):
        opts = self.opts
        self.resume()
        order = self.batch_order()
        self.model.train()
        start, done_at_start, running = time.time(), self.step, {}
        while self.step < len(order):
            stats = self.update(order[self.step][1])
            for k, v in stats.items():
                running[k] = running.get(k, 0.0) + v
            if self.step % opts["log_interval"] == 0 or self.step == len(order):
                rate = (self.step - done_at_start) / max(1e-9, time.time() - start)
                avg = " ".join(f"{k}={v / opts['log_interval']:.3f}" for k, v in running.items())
                logging.info("update %d/%d (epoch %d): %s lr=%.2e %.2f updates/s eta %.0fs", self.step, len(order),
                             order[self.step - 1][0] + 1, avg, self.optimizer.param_groups[0]["lr"], rate,
                             (len(order) - self.step) / max(rate, 1e-9))
                running = {}
            if self.step % opts["save_every"] == 0 and self.step < len(order):
                self.save_state()
        self.save_state()
        self.export()

    def export(self):
        """Write `out_dir/hf` with save_pretrained, written beside and renamed: a half-written one never
        looks complete. The whole pre-training model is saved, as facebook/wav2vec2-base is; a
        Wav2Vec2Model loads its body. The config keeps the architecture config's own masking (what
        fine-tuning applies), not the pre-training's."""
        out = self.out_dir / HF_DIR
        self.model.config.mask_time_prob = self.arch.get("mask_time_prob", Wav2Vec2Config().mask_time_prob)
        self.model.config.mask_time_length = self.arch.get("mask_time_length", Wav2Vec2Config().mask_time_length)
        tmp = Path(tempfile.mkdtemp(prefix=f".{HF_DIR}.", dir=self.out_dir))
        try:
            self.model.save_pretrained(str(tmp))
            (tmp / "pretraining.json").write_text(json.dumps({"updates": self.step, **self.opts}, indent=1))
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logging.info("wrote %s after %d updates", out, self.step)
        return out


def pretrain(arch_config, train_dir, out_dir, opts):
    """Pre-train (or resume) into out_dir; `max_updates` 0 saves the random initialisation, the
    baseline that shows what pre-training adds. Returns the Hugging Face directory."""
    hf_config, branch_init_scale = arch_from_training_config(arch_config)
    out_dir = Path(out_dir)
    make_output_dir(out_dir, probe=True)
    torch.set_num_threads(opts["num_threads"])
    trainer = Pretrainer(hf_config, train_dir, out_dir, opts, branch_init_scale)
    n = sum(p.numel() for p in trainer.model.wav2vec2.parameters())
    logging.info("pre-training a %.2fM-parameter Wav2Vec2 on %d utterances in %d batches an epoch, %d updates",
                 n / 1e6, sum(len(b) for b in trainer.batches), len(trainer.batches), opts["max_updates"])
    if opts["max_updates"] == 0:
        return trainer.export()
    trainer.run()
    return out_dir / HF_DIR
