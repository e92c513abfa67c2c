"""Training mechanics on a tiny model: resume, kill -9 safety, DDP replicas, decoding and scoring."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, TEXTS, make_dump, run_py
from ee_asr.data.cmvn import compute_global_stats, write_stats
from ee_asr.data.tokenizer import train_sentencepiece

CONFIG = """
encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 4, exit_layers: [2, 4],
               cnn_module_kernel: 7, input_layer: conv2d}
specaug: specaug
specaug_conf: {apply_time_warp: false, num_freq_mask: 1, num_time_mask: 1, time_mask_width_range: [0, 5]}
optim_conf: {lr: 0.001}
scheduler_conf: {warmup_steps: 10}
batch_bins: 600
max_epoch: %d
keep_nbest_models: 2
log_interval: 2
"""


def short_seconds(n):
    return [0.6 + 0.05 * (i % 5) for i in range(n)]


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    train = make_dump(root, "train", short_seconds(16))
    make_dump(root, "valid", short_seconds(4))
    (root / "text.txt").write_text("\n".join(TEXTS) + "\n")
    train_sentencepiece(root / "text.txt", root / "bpe", vocab_size=20, model_type="char")
    write_stats(compute_global_stats(train / "feats.scp"), root / "cmvn.npz")
    return root


def train_cmd(root, exp, epochs):
    cfg = root / f"conf{epochs}.yaml"
    cfg.write_text(CONFIG % epochs)
    return ["--config", str(cfg), "--train-dir", str(root / "train"), "--valid-dir", str(root / "valid"),
            "--bpemodel", str(root / "bpe.model"), "--cmvn", str(root / "cmvn.npz"), "--exp-dir", str(exp)]


def test_train_resume_decode_and_score(tiny_setup):
    root = tiny_setup
    exp = root / "exp_resume"
    run_py("ee_asr.bin.train", *train_cmd(root, exp, 1))
    assert (exp / "checkpoints" / "epoch1.pth").exists() and (exp / "model.pth").exists()
    log = (exp / "train.rank0.log").read_text()
    assert "loss_exit2=" in log and "cer_exit4=" in log
    run_py("ee_asr.bin.train", *train_cmd(root, exp, 2))
    log = (exp / "train.rank0.log").read_text()
    assert "resumed from" in log and "after epoch 1" in log
    history = json.loads((exp / "checkpoints" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    config = (exp / "config.yaml").read_text()
    assert "vocab_size:" in config and "stats_file:" in config
    # decoding and scoring read only exp/config.yaml and the weights
    run_py("ee_asr.bin.decode", "--exp-dir", str(exp), "--data-dir", str(root / "valid"))
    rows = [json.loads(line) for line in (exp / "decode_valid" / "exits.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 2 and {r["exit"] for r in rows} == {2, 4}
    assert {"utt", "exit", "hyp", "ref", "ref_words", "errors", "entropy", "maxprob"} <= set(rows[0])
    assert (exp / "decode_valid" / "exit2" / "text").exists()
    out = run_py("ee_asr.bin.score", "--exp-dir", str(exp)).stdout
    assert "|decode_valid/exit2|4|12|" in out and "|decode_valid/exit4|4|12|" in out
    assert "torch version" in (exp / "RESULTS.md").read_text()


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_and_finishes(tiny_setup):
    root = tiny_setup
    exp = root / "exp_kill"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "ee_asr.bin.train", *train_cmd(root, exp, 6)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (exp / "checkpoints" / "epoch2.pth").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # every checkpoint file on disk loads: none is half-written
    for f in (exp / "checkpoints").glob("*.pth"):
        torch.load(f, map_location="cpu", weights_only=False)
    run_py("ee_asr.bin.train", *train_cmd(root, exp, 6))
    history = json.loads((exp / "checkpoints" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert "resumed from" in (exp / "train.rank0.log").read_text()


@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_identical_parameters(tiny_setup):
    root = tiny_setup
    exp = root / "exp_ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).parent / "torchrun"
    # stochastic depth: a step that skips a block leaves its parameters without gradients, on one
    # rank or on both, which DDP must be told to expect
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "ee_asr.bin.train",
                           *train_cmd(root, exp, 2), "--set", "encoder_conf.stochastic_depth_rate=0.5"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in (exp / "train.rank0.log").read_text().splitlines() if "parameter digests" in line]
    assert len(lines) == 2  # one check per epoch
    for line in lines:
        digests = line.split(": ", 2)[-1].split()
        assert len(digests) == 2 and digests[0] == digests[1]
    assert "step 2:" in (exp / "train.rank0.log").read_text()  # both ranks took optimizer steps


@pytest.fixture(scope="module")
def trained(tiny_setup):
    exp = tiny_setup / "exp_tools"
    run_py("ee_asr.bin.train", *train_cmd(tiny_setup, exp, 1))
    return exp


def test_transcribe_reports_each_file_and_survives_bad_ones(tiny_setup, trained, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    good = tiny_setup / "utrain00.wav"
    proc = run_py("ee_asr.bin.transcribe", "--exp-dir", str(trained), "--policy", "entropy", "--threshold", "0.5",
                  str(good), str(empty), str(tmp_path / "missing.flac"), str(good), check=False)
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(str(good)) and "exit=" in line for line in lines)
    assert "ERROR" in proc.stderr and "empty.wav" in proc.stderr and "missing.flac" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_policy_decode_and_benchmark_json(tiny_setup, trained):
    run_py("ee_asr.bin.decode_policy", "--exp-dir", str(trained), "--data-dir", str(tiny_setup / "valid"),
           "--policy", "fixed", "--threshold", "2", "4")
    summary = json.loads((trained / "decode_valid" / "policy_fixed" / "thr_2" / "summary.json").read_text())
    assert summary["mean_exit"] == 2 and summary["compute_ratio"] == 0.5 and summary["utterances"] == 4
    out = trained / "bench.json"
    run_py("ee_asr.bin.benchmark", "--exp-dir", str(trained), "--data-dir", str(tiny_setup / "valid"), "--repeats", "1",
           "--train-steps", "1", "--points", "entropy:0.5", "--output", str(out))
    result = json.loads(out.read_text())
    assert [e["exit"] for e in result["exits"]] == [2, 4]
    assert set(result["exits"][0]) >= {"exit", "seconds", "ratio", "ideal_ratio"}
    assert result["exits"][-1]["ratio"] == 1.0
    assert {p["policy"] for p in result["policies"]} == {"fixed", "entropy"}
    assert set(result["policies"][0]) >= {"policy", "threshold", "wer", "mean_exit", "compute_ratio", "time_ratio"}
    assert result["train_step_ratio"] > 0


@pytest.mark.slow
def test_piecewise_schedule_planned_for_other_updates_is_warned_about(tiny_setup):
    def train_log(exp, last_step):
        cfg = tiny_setup / f"conf_pw{last_step}.yaml"
        cfg.write_text((CONFIG % 1).replace("scheduler_conf: {warmup_steps: 10}",
                                            f"scheduler: piecewise_linear\n"
                                            f"scheduler_conf: {{steps: [0, 1, {last_step}], scales: [0, 1, 0.1]}}"))
        args = train_cmd(tiny_setup, exp, 1)
        args[args.index("--config") + 1] = str(cfg)
        run_py("ee_asr.bin.train", *args)
        return (exp / "train.rank0.log").read_text()

    log = train_log(tiny_setup / "exp_pw_long", 1000)
    assert "scheduler_conf steps end at update 1000, but this run makes" in log
    updates = int(log.split("but this run makes ")[1].split()[0])
    assert 0 < updates < 1000
    assert "scheduler_conf steps end" not in train_log(tiny_setup / "exp_pw_fit", updates)
    # `last` ends the schedule at the run's last update, whatever the data and epochs make it
    assert "scheduler_conf steps end" not in train_log(tiny_setup / "exp_pw_last", "last")
    state = torch.load(tiny_setup / "exp_pw_last" / "checkpoints" / "latest.pth", weights_only=False)
    assert state["scheduler"]["steps"] == [0, 1, updates]
