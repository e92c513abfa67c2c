"""The real LibriSpeech and TED-LIUM 3 recipes, stages 1-7, on replicas of those corpora (the mini
corpus in their archives and layout) with a tiny model: several training subsets, speed
perturbation, every test set, utterances up to 35 s. Each run takes a few minutes; the LibriSpeech
Wav2Vec2 recipe (its waveform computed on the fly, `raw_online`) runs stages 1-6 in under one."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import soundfile
import yaml
from test_recipe import needs_tts

from conftest import ROOT, copy_recipe, run_py
from ee_asr.corpora import librispeech, tedlium3
from ee_asr.data.datadir import read_dict, validate_data_dir

# the mini recipes' tiny model (4 blocks of d=32, exits at 2 and 4), one epoch, and few policies
TINY = ["--nbpe", "100", "--policy-grid", "fixed:2 entropy:0.1 learned:0.7", "--train-args",
        "--max-epoch 1 --set encoder_conf.num_blocks=4 --set encoder_conf.exit_layers=[2,4] "
        "--set encoder_conf.stochastic_depth_rate=0.0 --set encoder_conf.output_size=32 "
        "--set encoder_conf.linear_units=64 --set encoder_conf.attention_heads=2",
        # a model one epoch old writes noise, whose CER int8 shifts at random: the check still runs
        "--export-max-cer-increase", "1000"]


def make_replica(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("replicas") / corpus
    run_py("ee_asr.bin.make_replica", corpus, "--output", str(out), "--size", "tiny")
    return out


@pytest.fixture(scope="module")
def librispeech_replica(tmp_path_factory):
    return make_replica("librispeech", tmp_path_factory)


@pytest.fixture(scope="module")
def tedlium3_replica(tmp_path_factory):
    return make_replica("tedlium3", tmp_path_factory)


@needs_tts
def test_librispeech_replica_is_what_the_real_preparer_reads(librispeech_replica, tmp_path):
    datadir = librispeech_replica
    assert sorted(p.name for p in datadir.glob("*.tar.gz")) == sorted(a.name for a in librispeech.ARCHIVES.values())
    librispeech.prepare(datadir, tmp_path / "data", train="960", download=False)
    sizes = {name: validate_data_dir(tmp_path / "data" / name) for name in librispeech.splits("960")}
    assert sizes == {"train": 80, "dev": 16, "dev_clean": 8, "dev_other": 8, "test_clean": 8, "test_other": 8}
    speakers = {name: set(read_dict(tmp_path / "data" / name / "utt2spk").values()) for name in sizes}
    assert not speakers["train"] & (speakers["test_clean"] | speakers["test_other"] | speakers["dev"])
    assert all(re.fullmatch(r"\d+", s) for s in speakers["train"])
    top = datadir / "LibriSpeech"
    listed = {line.split("|")[0].strip() for line in (top / "SPEAKERS.TXT").read_text().splitlines()[1:]}
    assert listed == set().union(*speakers.values())
    assert len((top / "CHAPTERS.TXT").read_text().splitlines()) > 1
    longest = {}  # every subset has LibriSpeech's longest kind of utterance, 30-35 s
    for name in sizes:
        for path in read_dict(tmp_path / "data" / name / "wav.scp").values():
            subset = path.split("/LibriSpeech/")[1].split("/")[0]
            longest[subset] = max(longest.get(subset, 0), soundfile.info(path).duration)
    assert longest.keys() == librispeech.ARCHIVES.keys() and all(30 <= s <= 35 for s in longest.values()), longest
    text = read_dict(tmp_path / "data" / "test_other" / "text")
    assert all(t == t.upper() for t in text.values())


@needs_tts
def test_tedlium3_replica_is_what_the_real_preparer_reads(tedlium3_replica, tmp_path):
    datadir = tedlium3_replica
    tedlium3.prepare(datadir, tmp_path / "data", download=False)
    counts = {name: validate_data_dir(tmp_path / "data" / name) for name in tedlium3.SPLITS}
    assert counts == {"train": 60, "dev": 8, "test": 10}
    stms = sorted((datadir / tedlium3.ROOT / "legacy").glob("*/stm/*.stm"))
    stm_text = "".join(p.read_text() for p in stms)
    assert "ignore_time_segment_in_scoring" in stm_text and "<unk>" in stm_text and " '" in stm_text
    for stm in stms:
        talk_seconds = soundfile.info(stm.parent.parent / "sph" / f"{stm.stem}.sph").duration
        ends = [end for *_, end, _, _ in tedlium3.read_stm(stm)]
        assert len(ends) > 1 and max(ends) <= talk_seconds + 0.005  # times in centiseconds
    text = " ".join(read_dict(tmp_path / "data" / "train" / "text").values())
    assert "<unk>" not in text and " '" not in text


def run_real_recipe(corpus, replica, tmp_path, *args):
    recipe = copy_recipe(ROOT / "egs" / corpus / "conformer_ctc_ee", tmp_path / corpus / "recipe")
    proc = subprocess.run(["./run.sh", "--local-data-opts", f"--download-dir {replica} --download false", *TINY,
                           *args, "--stop-stage", "7"], cwd=recipe, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Successfully finished stages 1-7" in proc.stderr
    return recipe, recipe / "exp" / "conformer_ctc_ee_unigram100"


def assert_every_set_scored_and_exported(recipe, exp, test_sets):
    results = (exp / "RESULTS.md").read_text()
    for name in test_sets:
        n = len(read_dict(recipe / "data" / name / "text"))
        for layer in (2, 4):
            assert re.search(rf"^\|decode_{name}/exit{layer}\|{n}\|", results, re.M), (name, layer)
        assert f"### Exit selection: decode_{name}" in results
    # features on the fly, the real recipes' default: lengths and CMVN only, no speed-perturbed copies;
    # training perturbs each utterance at load time with the run.sh's factors
    n_train = len(read_dict(recipe / "data" / "train" / "text"))
    dump = recipe / "dump" / "fbank_online" / "train"
    assert len(read_dict(dump / "utt2num_frames")) == n_train and not (dump / "feats.scp").exists()
    assert not (recipe / "data" / "train_sp").exists()
    assert yaml.safe_load((exp / "config.yaml").read_text())["speed_perturb_factors"] == [0.9, 1.0, 1.1]
    manifest = json.loads((exp / "onnx" / "manifest.json").read_text())
    assert [s["exit"] for s in manifest["segments"]] == [2, 4]
    assert all((exp / "onnx" / s["fp32"]).is_file() and (exp / "onnx" / s["int8"]).is_file()
               for s in manifest["segments"])


@pytest.mark.slow
@needs_tts
def test_real_librispeech_recipe_runs_stages_1_to_7_on_its_replica(librispeech_replica, tmp_path):
    """3.4-3.5 minutes (two runs) on a 2-core CPU that other jobs kept busy (load 7-13)."""
    test_sets = ["dev_clean", "dev_other", "test_clean", "test_other"]
    recipe, exp = run_real_recipe("librispeech", librispeech_replica, tmp_path, "--test-sets", " ".join(test_sets))
    assert_every_set_scored_and_exported(recipe, exp, test_sets)
    wavs = " ".join(read_dict(recipe / "data" / "train" / "wav.scp").values())  # the run.sh's 960 h: 3 subsets
    assert all(f"/LibriSpeech/{s}/" in wavs for s in librispeech.TRAIN["960"])


@pytest.mark.slow
@needs_tts
def test_real_tedlium3_recipe_runs_stages_1_to_7_on_its_replica(tedlium3_replica, tmp_path):
    """About 1 minute (two runs) on a 2-core CPU that other jobs kept busy (load 7-13)."""
    recipe, exp = run_real_recipe("tedlium3", tedlium3_replica, tmp_path)
    assert_every_set_scored_and_exported(recipe, exp, ["test"])
    assert (recipe / "data" / "train" / "segments").is_file()


# the paper-sized Wav2Vec2 (7 conv layers, 12 layers of d=768) shrunk: 4 layers of d=32, exits 2 and 4
TINY_W2V = ("--max-epoch 1 --set encoder_conf.hf_config.hidden_size=32 "
            "--set encoder_conf.hf_config.intermediate_size=64 "
            "--set encoder_conf.hf_config.num_attention_heads=2 --set encoder_conf.hf_config.num_hidden_layers=4 "
            "--set encoder_conf.exit_layers=[2,4] --set encoder_conf.hf_config.conv_dim=[16,16,16,16,16,16,16]")


@pytest.mark.slow
@needs_tts
def test_real_librispeech_wav2vec2_recipe_runs_on_the_fly_waveforms_on_its_replica(librispeech_replica, tmp_path):
    """About 50 s on a 2-core CPU beside another training job (load 1-2)."""
    recipe = copy_recipe(ROOT / "egs" / "librispeech" / "wav2vec2_ctc_ee_scratch", tmp_path / "librispeech" / "recipe")
    proc = subprocess.run(["./run.sh", "--local-data-opts", f"--download-dir {librispeech_replica} --download false",
                           "--policy-grid", "fixed:2 entropy:0.1", "--train-args", TINY_W2V], cwd=recipe,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Successfully finished stages 1-6" in proc.stderr
    exp = recipe / "exp" / "wav2vec2_ctc_ee_scratch_char"
    results = (exp / "RESULTS.md").read_text()
    for name in ("test_clean", "test_other"):
        n = len(read_dict(recipe / "data" / name / "text"))
        assert all(re.search(rf"^\|decode_{name}/exit{layer}\|{n}\|", results, re.M) for layer in (2, 4)), name
    # the run.sh's default: the waveform read from the corpus's FLAC as training and decoding need it,
    # each training utterance at a speed drawn per epoch; no dumped samples, no speed-perturbed copies
    dump = recipe / "dump" / "raw_online"
    assert json.loads((dump / "train" / "online_features.json").read_text()) == {"feats_type": "raw_online"}
    assert not list(dump.rglob("*.ark")) and not (recipe / "data" / "train_sp").exists()
    assert len(read_dict(dump / "train" / "utt2num_frames")) == len(read_dict(recipe / "data" / "train" / "text"))
    flac = sum(Path(f).stat().st_size for f in read_dict(recipe / "data" / "train" / "wav.scp").values())
    written = sum(f.stat().st_size for f in (dump / "train").rglob("*") if f.is_file() and f.parent.name != "log"
                  and f.name not in ("wav.scp", "text", "utt2spk", "spk2utt"))  # copies of the data dir's tables
    assert written <= 0.01 * flac, (written, flac)  # a raw dump: 2-3x the FLAC, per speed
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["speed_perturb_factors"] == [0.9, 1.0, 1.1] and config["input_size"] == 1
    assert " batch_bins=4000000 " in (exp / ".stage5.done").read_text()  # raw samples' default, as for raw
