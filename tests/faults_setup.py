"""Shared set-up of the fault-injection tests: a tiny corpus (features, token model, CMVN), training
and decoding commands, clones of a trained experiment and digests of everything in a directory."""

import hashlib
import shutil
from pathlib import Path

import torch
import yaml

from conftest import TEXTS, make_dump
from ee_asr.data.cmvn import compute_global_stats, write_stats
from ee_asr.data.tokenizer import train_sentencepiece

# stochastic depth and SpecAugment on: resume must restore the random generators to be bit-exact
CONFIG = """
encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 4, exit_layers: [2, 4],
               cnn_module_kernel: 7, input_layer: conv2d, stochastic_depth_rate: 0.3}
specaug: specaug
specaug_conf: {apply_time_warp: false, num_freq_mask: 1, num_time_mask: 1, time_mask_width_range: [0, 5]}
optim_conf: {lr: 0.002}
scheduler_conf: {warmup_steps: 10}
batch_bins: 400
max_epoch: 3
keep_nbest_models: 2
log_interval: 1
"""


def make_corpus(root):
    train = make_dump(root, "train", [0.5 + 0.05 * (i % 4) for i in range(8)])
    make_dump(root, "valid", [0.5, 0.6])
    (root / "text.txt").write_text("\n".join(TEXTS) + "\n")
    train_sentencepiece(root / "text.txt", root / "bpe", vocab_size=20, model_type="char")
    write_stats(compute_global_stats(train / "feats.scp"), root / "cmvn.npz")
    (root / "conf.yaml").write_text(CONFIG)
    return root


def train_args(root, exp, *extra, assets=None):
    """Training arguments; `assets`: the dir of the token model and CMVN file (default: `root`)."""
    assets = assets or root
    return ["--config", str(root / "conf.yaml"), "--train-dir", str(root / "train"), "--valid-dir",
            str(root / "valid"), "--bpemodel", str(assets / "bpe.model"), "--cmvn", str(assets / "cmvn.npz"),
            "--exp-dir", str(exp), *extra]


def digests(directory, skip=(".lock",)):
    """sha256 of every file under `directory` by relative path: equal before and after = intact.
    Logs and tensorboard events are left out: a run appends to them by design."""
    d = Path(directory)
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file() and p.name not in skip and "tensorboard" not in p.parts
            and not p.name.endswith(".log")}


def weights_digest(path):
    """A digest of the model weights in a model.pth or a training state's `model`."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("model", state)
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def clone_exp(root, exp, dst):
    """A copy of a trained experiment whose token model and CMVN file are its own copies, to damage."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "bpe.model", dst / "bpe.model")
    shutil.copy(root / "cmvn.npz", dst / "cmvn.npz")
    shutil.copytree(exp, dst / "exp", ignore=shutil.ignore_patterns("decode_*", "tensorboard", ".lock"))
    path = dst / "exp" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["bpemodel"] = str(dst / "bpe.model")
    config["normalize_conf"]["stats_file"] = str(dst / "cmvn.npz")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return dst / "exp"
