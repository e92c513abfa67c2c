import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def run_py(*args, check=True, **kw):
    """Run `python -m <args>` with the repo on the path; return the CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_recipe(src, dst):
    """A throw-away copy of a recipe: shared files linked, its own files copied (links followed);
    data, dump and downloads link to dst's parent, the corpus level, as in egs/<corpus>/<recipe>."""
    import shutil

    dst.mkdir(parents=True)
    for name in ("asr.sh", "path.sh", "utils"):
        (dst / name).symlink_to((src / name).resolve())
    for name in ("data", "dump", "downloads"):
        (dst / name).symlink_to(Path("..") / name)
    for name in ("run.sh", "cmd.sh", "conf", "local"):
        s = src / name
        (shutil.copytree if s.is_dir() else shutil.copy)(s, dst / name)
    return dst


# Sentences of the tiny synthetic-tone corpora that the training and fault tests build.
TEXTS = ["one two three", "four five six", "seven eight nine", "ten one two", "three four five",
         "six seven eight", "nine ten one", "two three four"]


def make_dump(root, name, seconds):
    """A dump dir `root/name` (wav.scp, text, feats.scp, utt2num_frames) of tone utterances of
    the given lengths, saying TEXTS in turn."""
    from ee_asr.data.features import write_features

    d = root / name
    d.mkdir(parents=True)
    wav, text = [], []
    for i, sec in enumerate(seconds):
        utt = f"u{name}{i:02d}"
        write_wav(root / f"{utt}.wav", sec, seed=i)
        wav.append(f"{utt} {root / f'{utt}.wav'}\n")
        text.append(f"{utt} {TEXTS[i % len(TEXTS)]}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "text").write_text("".join(text))
    write_features(d / "wav.scp", d / "feats")
    os.replace(d / "feats.num_frames", d / "utt2num_frames")
    return d


def write_wav(path, seconds=1.0, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(len(t))
    soundfile.write(path, wave.astype(np.float32), sr, subtype="PCM_16")


@pytest.fixture
def data_dir(tmp_path):
    """A valid 4-utterance Kaldi data dir with real (synthetic tone) audio."""
    d = tmp_path / "data"
    d.mkdir()
    utts = [("spk1-a", "spk1", "hello world"), ("spk1-b", "spk1", "good morning"),
            ("spk2-a", "spk2", "early exit"), ("spk2-b", "spk2", "speech recognition")]
    wav, text, u2s = [], [], []
    for i, (u, s, t) in enumerate(utts):
        p = tmp_path / f"{u}.wav"
        write_wav(p, 0.8 + 0.2 * i, seed=i)
        wav.append(f"{u} {p}\n")
        text.append(f"{u} {t}\n")
        u2s.append(f"{u} {s}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "text").write_text("".join(text))
    (d / "utt2spk").write_text("".join(u2s))
    (d / "spk2utt").write_text("spk1 spk1-a spk1-b\nspk2 spk2-a spk2-b\n")
    return d


# A small model for the tiny mini recipe: 4 blocks of d=32 with exits at 2 and 4, one epoch.
TINY_TRAIN_ARGS = ("--max-epoch 1 --set encoder_conf.num_blocks=4 --set encoder_conf.exit_layers=[2,4] "
                   "--set encoder_conf.stochastic_depth_rate=0.0 --set encoder_conf.output_size=32 "
                   "--set encoder_conf.linear_units=64 --set encoder_conf.attention_heads=2")


@pytest.fixture(scope="session")
def tiny_trained_recipe(tmp_path_factory):
    """The mini recipe's stages 1-4 on the tiny corpus (100 pieces, the small model above), run
    once per session; tests copy it (clone_recipe) before writing into it."""
    import shutil

    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are not installed (make system-deps)")
    recipe = copy_recipe(ROOT / "egs" / "mini_tts" / "conformer_ctc_ee", tmp_path_factory.mktemp("tiny") / "recipe")
    proc = subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", "--nbpe", "100", "--train-args",
                           TINY_TRAIN_ARGS, "--stop-stage", "4"], cwd=recipe, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return recipe


def free_port(count=1):
    """The first of `count` consecutive free TCP ports, drawn below the kernel's ephemeral range: a port
    bound to 0 and released is soon handed again to whichever program (srun, a client socket) binds next,
    and a launcher that then finds it taken talks to a stranger."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    below, above = (max(1024, low - 12000), low - count), (high + 1, 65536 - count)
    span = below if below[1] - below[0] >= 1000 else above
    for _ in range(200):
        first = random.randrange(*span)
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("0.0.0.0", port))
            return first
        except OSError:
            continue
    raise RuntimeError("no free TCP port below the ephemeral range")


def sigint_as_in_a_terminal():
    """Popen's preexec_fn for a child the test interrupts with SIGINT: SIGINT handled by default,
    as in a terminal's foreground job. A pytest started in the background (`cmd &` in a script)
    passes SIGINT on ignored, and bash cannot un-ignore a signal ignored when it started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def clone_recipe(src, dst):
    """A copy of a recipe that has run, with its corpus (data, dump, audio) beside it as in
    egs/<corpus>/<recipe>: the corpus dir is copied to dst's parent, links stay links."""
    import shutil

    for name in ("data", "dump", "downloads"):
        if (src.parent / name).exists():
            shutil.copytree(src.parent / name, dst.parent / name, symlinks=True, dirs_exist_ok=True)
    shutil.copytree(src, dst, symlinks=True)
    return dst


def decode_online(model, x, xl, policy, threshold, engine=None, max_layers=None):
    """The PyTorch exit engine over `model` (or `engine`) decoding a padded batch with one policy."""
    from ee_asr.decode.torch_backend import torch_engine
    from ee_asr.exits.policies import Policy

    return (engine or torch_engine(model)).decode((x, xl), Policy(policy, threshold, max_layers))


def onnx_decode(onnx_dir, feats, policy, threshold, max_layers=None, loaded_up_to=None):
    """The ONNX exit engine over an export (segments loaded up to `loaded_up_to`) decoding a list of features."""
    from ee_asr.deploy.onnx_backend import onnx_engine
    from ee_asr.exits.policies import Policy

    return onnx_engine(onnx_dir, loaded_up_to, policy=policy).decode(feats, Policy(policy, threshold, max_layers))


def tiny_dump(root, sentences, first_seconds):
    """Synthetic tone utterances of `sentences` (the i-th first_seconds + 0.3 i long) with fbank in
    root/dump and a 30-piece token model root/bpe.model: (dump dir, [(utt, wav, text)], Tokenizer)."""
    from ee_asr.data.features import write_features
    from ee_asr.data.tokenizer import Tokenizer, train_sentencepiece

    (root / "text.txt").write_text("\n".join(sentences * 5) + "\n")
    train_sentencepiece(root / "text.txt", root / "bpe", vocab_size=30)
    data = root / "dump"
    data.mkdir()
    wavs = []
    for i, sentence in enumerate(sentences):
        write_wav(root / f"u{i}.wav", first_seconds + 0.3 * i, seed=i)
        wavs.append((f"u{i}", root / f"u{i}.wav", sentence))
    (root / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w, _ in wavs))
    (data / "text").write_text("".join(f"{u} {t}\n" for u, _, t in wavs))
    write_features(root / "wav.scp", data / "feats")
    return data, wavs, Tokenizer(root / "bpe.model")


def random_experiment(exp, config, ctc_scale):
    """exp/config.yaml and exp/model.pth of `config` with random weights (seed 0), its CTC heads'
    weights scaled by `ctc_scale`: sharper posteriors, since random weights otherwise leave
    near-ties that float noise flips between backends."""
    import torch
    import yaml

    from ee_asr.models.registry import build_model

    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(0)
    model = build_model(config)
    with torch.no_grad():
        for head in model.ctc_heads:
            head.ctc_lo.weight.mul_(ctc_scale)
    torch.save(model.state_dict(), exp / "model.pth")
    return exp
