"""Stage bookkeeping (utils/stage.sh) and asr.sh's option checks: an interrupted stage rerun with
other options removes only its own partial outputs; bad option values fail before any work."""

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, copy_recipe

RECIPE = ROOT / "egs" / "mini_tts" / "conformer_ctc_ee"
# utils/stage.sh calls `python -m ee_asr.bin.stage_state`, as a recipe's path.sh sets it up
STAGE_ENV = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
needs_tts = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                               reason="espeak-ng and sox are not installed (make system-deps)")


def bash(cwd, script):
    return subprocess.run(["bash", "-c", f"set -e; . {ROOT}/utils/stage.sh; {script}"], cwd=cwd,
                          capture_output=True, text=True, env=STAGE_ENV)


def digest(path):
    return hashlib.sha1(path.read_bytes()).hexdigest()


def put(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_interrupted_stage_1_with_other_options_keeps_the_token_list(tmp_path):
    bpe = put(tmp_path / "data" / "token_list" / "unigram300" / "bpe.model", "a token model")
    put(tmp_path / "data" / "train" / "text", "old")
    # a run with other options starts stage 1 (declaring its outputs), writes part of them, dies
    proc = bash(tmp_path, "stage_begin 1 data 'opts=B' data/train data/other; "
                          "mkdir -p data/other; touch data/other/half")
    assert proc.returncode == 0, proc.stderr
    proc = bash(tmp_path, "stage_begin 1 data 'opts=A' data/train data/dev")
    assert proc.returncode == 0, proc.stderr
    assert "removing that run's outputs: data/train data/other" in proc.stderr
    assert not (tmp_path / "data" / "other").exists() and not (tmp_path / "data" / "train").exists()
    assert bpe.read_text() == "a token model"


def test_interrupted_stage_2_keeps_the_cmvn_a_model_reads(tmp_path):
    cmvn = put(tmp_path / "dump" / "train" / "cmvn.npz", "stats of a trained model")
    before = digest(cmvn)
    # stage 2 declares each file as it goes; this run died in the fbank of `test`, before the cmvn
    proc = bash(tmp_path, "stage_begin 2 dump 'n_mels=40'; "
                          "stage_output 2 dump dump/train/feats.scp dump/test/split; "
                          "touch dump/train/feats.scp; mkdir -p dump/test/split")
    assert proc.returncode == 0, proc.stderr
    proc = bash(tmp_path, "stage_begin 2 dump 'n_mels=80'")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "dump" / "test" / "split").exists()
    assert not (tmp_path / "dump" / "train" / "feats.scp").exists()
    assert digest(cmvn) == before
    # the same options again: nothing is removed (the rerun continues its own outputs)
    put(tmp_path / "dump" / "test" / "split" / "feats.1.ark")
    proc = bash(tmp_path, "stage_output 2 dump dump/test/split; stage_begin 2 dump 'n_mels=80'")
    assert (tmp_path / "dump" / "test" / "split" / "feats.1.ark").exists()
    proc = bash(tmp_path, "stage_end 2 dump 'n_mels=80'; stage_skip 2 dump 'n_mels=80'")
    assert proc.returncode == 0 and not (tmp_path / "dump" / ".stage2.running").exists()


def test_outputs_outside_the_recipe_are_refused(tmp_path):
    outside = put(tmp_path / "outside" / "keep")
    (tmp_path / "r").mkdir()
    for bad in ("../outside", "/etc", ".", "data/../.."):
        proc = bash(tmp_path / "r", f"stage_begin 3 tok 'x' '{bad}'")
        assert proc.returncode != 0 and "refusing" in proc.stderr, bad
    # even a tampered outputs list removes nothing outside
    (tmp_path / "r" / "tok").mkdir(exist_ok=True)
    (tmp_path / "r" / "tok" / ".stage3.running").write_text("old\n")
    (tmp_path / "r" / "tok" / ".stage3.outputs").write_text("../outside\n")
    bash(tmp_path / "r", "stage_begin 3 tok 'new'")
    assert outside.exists()


@pytest.fixture
def recipe(tmp_path):
    return copy_recipe(RECIPE, tmp_path / "recipe")


@pytest.mark.parametrize("args, message", [
    (["--stage", "5", "--stop-stage", "3"], "--stage 5 is after --stop-stage 3"),
    (["--stage", "five"], "--stage must be a whole number, not 'five'"),
    (["--stop-stage", "0"], "--stop-stage must be at least 1"),
    (["--stage", "8"], "--stage must be 1-7"),
    (["--num-procs", "0"], "--num-procs must be at least 1, not 0"),
    (["--nj", "-2"], "--nj must be a whole number, not '-2'"),
    (["--decode-nj", "0"], "--decode-nj must be at least 1"),
    (["--decode-batch-bins", "0"], "--decode-batch-bins must be a positive whole number"),
    (["--num-nodes", "2", "--node-rank", "2", "--master-addr", "h"], "--node-rank 2 must be below --num-nodes 2"),
    (["--num-nodes", "2", "--stage", "4", "--stop-stage", "4"], "needs --master-addr"),
    (["--num-nodes", "2", "--master-addr", "h"], "run only training on every node"),
    (["--token-type", "wordpiece"], "--token-type must be unigram, bpe or char"),
    (["--device", "gpu"], "--device must be cpu or cuda"),
    (["--max-wer-increase", "1 +0.5"], "--max-wer-increase takes WER points (numbers >= 0), not '+0.5'"),
    (["--calibration-confidence", "90"], "--calibration-confidence must be between 0 and 1, not '90'"),
    (["--nbest-size", "0"], "--nbest-size must be at least 1, not 0"),
    (["--blank-skip-sweep", "4"], "--blank-skip-sweep takes EXIT:THRESHOLD[,THRESHOLD...]"),
    (["--policy-grid", "fixed:6 maxprob:1.5"], "--policy-grid: 'maxprob:1.5': 1.5 for maxprob"),
    (["--policy-grid", "entropy:-1"], "--policy-grid: 'entropy:-1': -1 for entropy"),
])
def test_bad_option_values_fail_before_any_work(recipe, args, message):
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert not (recipe / "data").exists() and not (recipe / "downloads").exists()


@pytest.mark.slow
@needs_tts
def test_recipe_stage_1_rerun_after_a_failed_run_keeps_stage_3_output(recipe):
    def run(*args):
        return subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", "--nbpe", "100", *args], cwd=recipe,
                              capture_output=True, text=True, timeout=600)
    proc = run("--stop-stage", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    bpe = recipe / "data" / "token_list" / "unigram100" / "bpe.model"
    cmvn = recipe / "dump" / "fbank" / "train" / "cmvn.npz"
    before = digest(bpe), digest(cmvn)
    typo_args = ["./run.sh", "--stage", "1", "--stop-stage", "1", "--local-data-opts", "--size tiny --seed x"]
    # data/ is the corpus's, shared by its recipes: other corpus options are refused before any work
    refused = subprocess.run(typo_args, cwd=recipe, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "was prepared with other options" in refused.stderr
    assert (digest(bpe), digest(cmvn)) == before
    # stage 1 redone (its marker removed) with a typo'd corpus option: it starts, then local/data.sh fails
    (recipe / "data" / ".stage1.done").unlink()
    typo = subprocess.run(typo_args, cwd=recipe, capture_output=True, text=True, timeout=600)
    assert typo.returncode != 0 and (recipe / "data" / ".stage1.running").exists()
    proc = run("--stage", "1", "--stop-stage", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "removing that run's outputs: data/train data/dev data/dev_unseen data/test" in proc.stderr
    assert (digest(bpe), digest(cmvn)) == before
    # a data dir the recipe reads but data/ lacks (a set added since): local/data.sh again, the rest kept
    shutil.rmtree(recipe / "data" / "dev_unseen")
    proc = run("--stage", "1", "--stop-stage", "1")
    assert proc.returncode == 0 and "data/ lacks dev_unseen" in proc.stderr, proc.stderr[-3000:]
    assert (recipe / "data" / "dev_unseen" / "text").exists() and (digest(bpe), digest(cmvn)) == before
