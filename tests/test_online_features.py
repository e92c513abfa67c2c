"""Features on the fly (`fbank_online`, `raw_online`): computed from the audio as it is (wav,
FLAC, SPHERE, through segments) they equal stage 2's dump (fbank, or the waveform's samples);
stage 2 writes only lengths and CMVN statistics; speed perturbation is drawn per (seed, epoch,
utterance), the same in loader workers; training resumes bit-exactly and decoding reads the dump
dir as it reads a dumped one; a feature type that is none of these is refused, naming them."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from faults_setup import train_args, weights_digest

from conftest import ROOT, TEXTS, copy_recipe, make_dump, run_py, write_wav
from ee_asr.common.errors import DataError
from ee_asr.data.cmvn import compute_global_stats, merge_stats
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.features import write_features
from ee_asr.data.loader import batch_loader
from ee_asr.data.online_features import ONLINE_CONF, speed_factor, write_lengths_and_stats, write_online_conf
from ee_asr.data.tokenizer import train_sentencepiece

# the stage scripts run `python`: this interpreter's
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
       "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}


def online_dump(src, dst, segments=False, feats_type="fbank_online"):
    """`dst`: `src`'s tables and the lengths + CMVN sums of stage 2 on the fly (one job)."""
    dst.mkdir()
    for name in ("wav.scp", "text") + (("segments",) if segments else ()):
        (dst / name).write_text((src / name).read_text())
    (dst / "split").mkdir()
    write_lengths_and_stats(dst / "wav.scp", dst / "split/feats.1", dst / "segments" if segments else None,
                            feats_type=feats_type)
    os.replace(dst / "split/feats.1.num_frames", dst / "utt2num_frames")
    write_online_conf(dst, feats_type, 80)
    return dst


def raw_dump(src, dst, segments=False):
    """`dst`: `src`'s tables and stage 2's `raw` dump, the waveform as (samples, 1) in an ark."""
    dst.mkdir()
    for name in ("wav.scp", "text"):
        (dst / name).write_text((src / name).read_text())
    write_features(dst / "wav.scp", dst / "feats", segments=src / "segments" if segments else None, feats_type="raw")
    os.replace(dst / "feats.num_frames", dst / "utt2num_frames")
    return dst


@pytest.fixture(scope="module")
def audio_formats(tmp_path_factory):
    """Dump dirs of wav, FLAC and SPHERE files (`files`) and of segments of a long recording
    (`segs`): stage 2's fbank dump in each, its raw dump in `<kind>_raw`, and on-the-fly dumps
    of them in `<kind>_online` (fbank_online) and `<kind>_raw_online`."""
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
    s = root / "segs"
    s.mkdir()
    write_wav(root / "long.wav", 3.0, seed=7)
    (s / "wav.scp").write_text(f"talk {root / 'long.wav'}\n")
    (s / "segments").write_text("talk-a talk 0.00 0.90\ntalk-b talk 0.85 2.10\ntalk-c talk 2.2 3.0\n")
    (s / "text").write_text("".join(f"talk-{c} {TEXTS[i]}\n" for i, c in enumerate("abc")))
    for kind in ("files", "segs"):
        segments = root / kind / "segments" if kind == "segs" else None
        write_features(root / kind / "wav.scp", root / kind / "feats", segments=segments)
        os.replace(root / kind / "feats.num_frames", root / kind / "utt2num_frames")
        raw_dump(root / kind, root / f"{kind}_raw", segments=kind == "segs")
        for feats_type, name in (("fbank_online", f"{kind}_online"), ("raw_online", f"{kind}_raw_online")):
            online_dump(root / kind, root / name, segments=kind == "segs", feats_type=feats_type)
    return root


# (on-the-fly dump, the stage-2 dump it stands for) in audio_formats, per feature type
PAIRS = {"fbank_online": ("{}_online", "{}"), "raw_online": ("{}_raw_online", "{}_raw")}


@pytest.mark.parametrize("feats_type", PAIRS)
@pytest.mark.parametrize("kind", ["files", "segs"])
def test_online_features_equal_the_stage_2_dump(audio_formats, kind, feats_type):
    dst, src = (audio_formats / name.format(kind) for name in PAIRS[feats_type])
    assert not (dst / "feats.scp").exists()
    dumped, online = FeatureDataset(src), FeatureDataset(dst)
    assert online.lengths == dumped.lengths
    for utt in online.lengths:
        if feats_type == "raw_online":  # the very samples the dump holds, in its shape and type
            got, want = online.feats[utt], dumped.feats[utt]
            assert got.dtype == want.dtype == np.float32 and got.shape == want.shape == (online.lengths[utt], 1)
            np.testing.assert_array_equal(got, want)
        else:  # the same samples through the same fbank code: equal to float32 rounding (1e-5 stated)
            np.testing.assert_allclose(online.feats[utt], dumped.feats[utt], rtol=0, atol=1e-5)
    stats = merge_stats([dst / "split/feats.1.stats.npz"])
    ref = compute_global_stats(src / "feats.scp")  # what stage 2 of the dumped kind computes CMVN from
    assert int(stats["count"]) == int(ref["count"]) and stats["sum"].shape == ref["sum"].shape
    np.testing.assert_allclose(stats["sum"], ref["sum"], rtol=1e-9)
    np.testing.assert_allclose(stats["sum_square"], ref["sum_square"], rtol=1e-9)


@pytest.mark.parametrize("feats_type", PAIRS)
def test_speed_factors_are_drawn_per_epoch_and_utterance_and_change_the_length(audio_formats, feats_type):
    factors = [0.9, 1.0, 1.1]
    draws = {(e, u): speed_factor(factors, 3, e, u) for e in range(20) for u in ("u0", "u1")}
    assert set(draws.values()) == set(factors)  # every factor occurs
    assert draws == {(e, u): speed_factor(factors, 3, e, u) for e in range(20) for u in ("u0", "u1")}
    assert speed_factor(None, 3, 0, "u0") == 1.0
    dst = audio_formats / PAIRS[feats_type][0].format("files")
    data = FeatureDataset(dst, speed_factors=factors, seed=3)
    plain = FeatureDataset(dst)
    seen = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        f = speed_factor(factors, 3, epoch, "u1")
        seen.add(f)
        n = len(data.feats["u1"])  # frames, or samples for raw_online
        assert abs(n - plain.lengths["u1"] / f) <= 2, (f, n)
        if f == 1.0:
            np.testing.assert_array_equal(data.feats["u1"], plain.feats["u1"])
    assert len(seen) > 1  # the epochs above tried more than one speed


@pytest.mark.parametrize("feats_type", PAIRS)
def test_workers_compute_the_epochs_draws_as_the_main_process_does(audio_formats, feats_type):
    factors, utts = [0.9, 1.1], ["u0", "u1", "u2"]
    # an epoch whose draws are not epoch 0's: a worker that missed set_epoch would differ
    epoch = next(e for e in range(1, 50)
                 if [speed_factor(factors, 1, e, u) for u in utts] != [speed_factor(factors, 1, 0, u) for u in utts])
    data = FeatureDataset(audio_formats / PAIRS[feats_type][0].format("files"), speed_factors=factors, seed=1)
    data.set_epoch(epoch)
    plan = [["u0", "u1"], ["u2"]]
    got = list(batch_loader(data, plan, num_workers=2))
    assert len(got) == len(plan)
    for batch, planned in zip(got, plan):
        assert batch[0] == planned and torch.equal(batch[1], data.collate(planned)[1])


@pytest.mark.parametrize("dumped, message", [("files", "fbank_online"), ("files_raw", "raw_online")])
def test_dumped_features_refuse_speed_factors(audio_formats, dumped, message):
    with pytest.raises(Exception, match=message):
        FeatureDataset(audio_formats / dumped, speed_factors=[0.9, 1.1])


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


def test_stage_2_raw_online_writes_lengths_in_samples_and_under_1_percent_of_the_audio(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    seconds = {"spk1-a": 6.0, "spk1-b": 9.5, "spk2-a": 12.0, "spk2-b": 15.5}  # LibriSpeech's: 12 s on average
    for i, utt in enumerate(seconds):
        write_wav(tmp_path / f"{utt}.wav", seconds[utt], seed=i)
    for name, line in (("wav.scp", lambda u: f"{u} {tmp_path / f'{u}.wav'}"), ("text", lambda u: f"{u} {TEXTS[0]}"),
                       ("utt2spk", lambda u: f"{u} {u[:4]}")):
        (data / name).write_text("".join(f"{line(u)}\n" for u in seconds))
    (data / "spk2utt").write_text("spk1 spk1-a spk1-b\nspk2 spk2-a spk2-b\n")
    out = tmp_path / "dump"
    subprocess.run(["bash", str(ROOT / "utils/compute_features.sh"), "--nj", "2", "--feats-type", "raw_online",
                    str(data), str(out)], cwd=ROOT, env=ENV, check=True, capture_output=True)
    run_py("ee_asr.bin.compute_cmvn", str(out), str(out / "cmvn.npz"))
    assert json.loads((out / ONLINE_CONF).read_text()) == {"feats_type": "raw_online"}
    assert not list(out.rglob("*.ark")) and not (out / "feats.scp").exists()
    lengths = {u: int(n) for u, n in (line.split() for line in (out / "utt2num_frames").read_text().splitlines())}
    assert lengths == {u: soundfile.info(tmp_path / f"{u}.wav").frames for u in seconds}  # samples, not frames
    audio = sum(os.path.getsize(tmp_path / f"{u}.wav") for u in seconds)
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and p.parent.name != "log"
                  and p.name not in ("wav.scp", "text", "utt2spk", "spk2utt"))  # copies of the data dir's tables
    assert written <= 0.01 * audio, (written, audio)  # a raw dump is twice the 16-bit audio, per speed
    with np.load(out / "cmvn.npz") as stats:  # as stage 2 of `raw`: over the samples, one dimension
        assert int(stats["count"]) == sum(lengths.values()) and stats["sum"].shape == (1,)
    feats = FeatureDataset(out).feats["spk2-b"]
    assert feats.shape == (lengths["spk2-b"], 1) and feats.dtype == np.float32


def test_a_feature_type_of_none_of_these_is_refused_naming_the_valid_ones(data_dir, tmp_path):
    valid = "fbank, raw, fbank_online or raw_online"
    recipe = copy_recipe(ROOT / "egs" / "mini_tts" / "conformer_ctc_ee", tmp_path / "corpus" / "recipe")
    proc = subprocess.run(["./run.sh", "--feats-type", "raw_onlin"], cwd=recipe, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and f"--feats-type must be {valid}, not 'raw_onlin'" in proc.stderr, proc.stderr
    assert not (recipe / "data").exists()  # refused before any work
    proc = subprocess.run(["bash", str(ROOT / "utils/compute_features.sh"), "--feats-type", "mfcc_online",
                           str(data_dir), str(tmp_path / "dump")], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode != 0 and f"must be {valid}, not 'mfcc_online'" in proc.stderr, proc.stderr
    assert not (tmp_path / "dump").exists()
    proc = run_py("ee_asr.bin.compute_features", "--wav-scp", str(data_dir / "wav.scp"), "--out-prefix",
                  str(tmp_path / "feats"), "--feats-type", "online", check=False)
    assert proc.returncode == 2 and all(f"'{t}'" in proc.stderr for t in valid.replace(" or", ",").split(", "))
    # a dump dir whose online_features.json names another kind (written by hand, or a newer ee-asr)
    (tmp_path / "odd").mkdir()
    for name in ("wav.scp", "text"):
        (tmp_path / "odd" / name).write_text((data_dir / name).read_text())
    (tmp_path / "odd" / "utt2num_frames").write_text("spk1-a 100\n")
    (tmp_path / "odd" / ONLINE_CONF).write_text('{"feats_type": "mfcc_online"}\n')
    with pytest.raises(DataError, match=r"online_features.json: feats_type 'mfcc_online' is none of "
                                        r"fbank_online, raw_online"):
        FeatureDataset(tmp_path / "odd")


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
