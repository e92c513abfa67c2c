"""Features on the fly (`fbank_online`): computed from the audio as it is (wav, FLAC, SPHERE,
through segments) they equal stage 2's dump; stage 2 writes only lengths and CMVN statistics;
speed perturbation is drawn per (seed, epoch, utterance), the same in loader workers; training
resumes bit-exactly and decoding reads the dump dir as it reads a dumped one."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from faults_setup import train_args, weights_digest

from conftest import ROOT, TEXTS, make_dump, run_py, write_wav
from ee_asr.data.cmvn import compute_global_stats, merge_stats
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.features import write_features
from ee_asr.data.loader import batch_loader
from ee_asr.data.online_fbank import speed_factor, write_lengths_and_stats, write_online_conf
from ee_asr.data.tokenizer import train_sentencepiece

# the stage scripts run `python`: this interpreter's
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
       "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}


def online_dump(src, dst, segments=False):
    """`dst`: `src`'s tables and the lengths + CMVN sums of stage 2 fbank_online (one job)."""
    dst.mkdir()
    for name in ("wav.scp", "text") + (("segments",) if segments else ()):
        (dst / name).write_text((src / name).read_text())
    (dst / "split").mkdir()
    write_lengths_and_stats(dst / "wav.scp", dst / "split/feats.1", dst / "segments" if segments else None)
    os.replace(dst / "split/feats.1.num_frames", dst / "utt2num_frames")
    write_online_conf(dst, 80)
    return dst


@pytest.fixture(scope="module")
def audio_formats(tmp_path_factory):
    """A dump dir of wav, FLAC and SPHERE files and one of segments of a long recording."""
    root = tmp_path_factory.mktemp("formats")
    d = root / "files"
    d.mkdir()
    wav, text = [], []
    for i, fmt in enumerate(("WAV", "FLAC", "NIST")):
        write_wav(root / "tmp.wav", 0.7 + 0.1 * i, seed=i)
        data, sr = soundfile.read(root / "tmp.wav", dtype="int16")
        path = root / f"u{i}.{fmt.lower()}"
        soundfile.write(path, data, sr, format=fmt, subtype="PCM_16")
        wav.append(f"u{i} {path}\n")
        text.append(f"u{i} {TEXTS[i]}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "text").write_text("".join(text))
    write_features(d / "wav.scp", d / "feats")
    s = root / "segs"
    s.mkdir()
    write_wav(root / "long.wav", 3.0, seed=7)
    (s / "wav.scp").write_text(f"talk {root / 'long.wav'}\n")
    (s / "segments").write_text("talk-a talk 0.00 0.90\ntalk-b talk 0.85 2.10\ntalk-c talk 2.2 3.0\n")
    (s / "text").write_text("".join(f"talk-{c} {TEXTS[i]}\n" for i, c in enumerate("abc")))
    write_features(s / "wav.scp", s / "feats", segments=s / "segments")
    return root


@pytest.mark.parametrize("kind", ["files", "segs"])
def test_online_features_equal_the_stage_2_dump(audio_formats, kind):
    src = audio_formats / kind
    dst = online_dump(src, audio_formats / f"{kind}_online", segments=kind == "segs")
    assert not (dst / "feats.scp").exists()
    dumped, online = FeatureDataset(src), FeatureDataset(dst)  # `src` has no utt2num_frames: copy it
    lengths = dict(line.split() for line in (src / "feats.num_frames").read_text().splitlines())
    assert {k: int(v) for k, v in lengths.items()} == online.lengths
    for utt in online.lengths:
        # the same samples through the same fbank code: equal to float32 rounding (1e-5 stated)
        np.testing.assert_allclose(online.feats[utt], dumped.feats[utt], rtol=0, atol=1e-5)
    stats = merge_stats([dst / "split/feats.1.stats.npz"])
    ref = compute_global_stats(src / "feats.scp")
    assert int(stats["count"]) == int(ref["count"])
    np.testing.assert_allclose(stats["sum"], ref["sum"], rtol=1e-9)


@pytest.fixture(autouse=True)
def _lengths_file(audio_formats):
    for kind in ("files", "segs"):
        lens = audio_formats / kind / "utt2num_frames"
        if not lens.exists():
            lens.write_text((audio_formats / kind / "feats.num_frames").read_text())


def test_speed_factors_are_drawn_per_epoch_and_utterance_and_change_the_length(audio_formats):
    factors = [0.9, 1.0, 1.1]
    draws = {(e, u): speed_factor(factors, 3, e, u) for e in range(20) for u in ("u0", "u1")}
    assert set(draws.values()) == set(factors)  # every factor occurs
    assert draws == {(e, u): speed_factor(factors, 3, e, u) for e in range(20) for u in ("u0", "u1")}
    assert speed_factor(None, 3, 0, "u0") == 1.0
    dst = audio_formats / "files_online"
    data = FeatureDataset(dst, speed_factors=factors, seed=3)
    plain = FeatureDataset(dst)
    for epoch in range(6):
        data.set_epoch(epoch)
        f = speed_factor(factors, 3, epoch, "u1")
        n = len(data.feats["u1"])
        assert abs(n - plain.lengths["u1"] / f) <= 2, (f, n)
        if f == 1.0:
            np.testing.assert_array_equal(data.feats["u1"], plain.feats["u1"])


def test_workers_compute_the_epochs_draws_as_the_main_process_does(audio_formats):
    data = FeatureDataset(audio_formats / "files_online", speed_factors=[0.9, 1.1], seed=1)
    data.set_epoch(4)
    plan = [["u0", "u1"], ["u2"]]
    got = list(batch_loader(data, plan, num_workers=2))
    for batch, utts in zip(got, plan):
        assert torch.equal(batch[1], data.collate(utts)[1])


def test_dumped_features_refuse_speed_factors(audio_formats):
    with pytest.raises(Exception, match="fbank_online"):
        FeatureDataset(audio_formats / "files", speed_factors=[0.9, 1.1])


def test_stage_2_script_writes_lengths_and_statistics_only(data_dir, tmp_path):
    out = tmp_path / "dump"
    subprocess.run(["bash", str(ROOT / "utils/compute_features.sh"), "--nj", "2", "--feats-type", "fbank_online",
                    str(data_dir), str(out)], cwd=ROOT, env=ENV, check=True, capture_output=True)
    run_py("ee_asr.bin.compute_cmvn", str(out), str(out / "cmvn.npz"))
    assert (out / "online_features.json").is_file() and not list(out.rglob("*.ark"))
    assert not (out / "feats.scp").exists() and len((out / "utt2num_frames").read_text().splitlines()) == 4
    audio = sum(os.path.getsize(line.split()[1]) for line in (data_dir / "wav.scp").read_text().splitlines())
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and p.parent.name != "log"
                  and p.name not in ("wav.scp", "text", "utt2spk", "spk2utt"))  # copies of the data dir's tables
    assert written < 0.1 * audio  # lengths and statistics: a few kB, whatever the audio
    with np.load(out / "cmvn.npz") as stats:
        assert int(stats["count"]) == sum(int(line.split()[1]) for line in
                                          (out / "utt2num_frames").read_text().splitlines())


def test_training_on_the_fly_with_speed_perturbation_resumes_bit_exactly_and_decodes(tmp_path):
    root = tmp_path
    dumped = make_dump(root, "dtrain", [0.5 + 0.05 * (i % 4) for i in range(8)])
    online_dump(dumped, root / "train")
    valid = make_dump(root, "dvalid", [0.5, 0.6])
    online_dump(valid, root / "valid")
    (root / "text.txt").write_text("\n".join(TEXTS) + "\n")
    train_sentencepiece(root / "text.txt", root / "bpe", vocab_size=20, model_type="char")
    run_py("ee_asr.bin.compute_cmvn", str(root / "train"), str(root / "cmvn.npz"))
    from faults_setup import CONFIG

    (root / "conf.yaml").write_text(CONFIG.replace("max_epoch: 3", "max_epoch: 2")
                                    + "speed_perturb_factors: [0.9, 1.0, 1.1]\n")
    run_py("ee_asr.bin.train", *train_args(root, root / "ref"))
    run_py("ee_asr.bin.train", *train_args(root, root / "split", "--max-epoch", "1", "--set", "num_workers=2"))
    run_py("ee_asr.bin.train", *train_args(root, root / "split", "--set", "num_workers=2"))
    assert weights_digest(root / "split" / "checkpoints" / "latest.pth") == \
        weights_digest(root / "ref" / "checkpoints" / "latest.pth")
    run_py("ee_asr.bin.decode", "--exp-dir", str(root / "ref"), "--data-dir", str(root / "valid"))
    assert len((root / "ref" / "decode_valid" / "exits.jsonl").read_text().splitlines()) == 2 * 2
