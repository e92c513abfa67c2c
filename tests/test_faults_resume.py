"""Resume is bit-exact: a training interrupted at an epoch boundary, or killed with -9 at a random
point, then rerun, ends with the same weights as one uninterrupted run (stochastic depth and
SpecAugment on, so the checkpoint must carry the random generators' states)."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from faults_setup import digests, make_corpus, train_args, weights_digest

from conftest import ROOT, run_py

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The corpus and one uninterrupted 3-epoch run, with how long it took."""
    root = make_corpus(tmp_path_factory.mktemp("resume"))
    start = time.time()
    run_py("ee_asr.bin.train", *train_args(root, root / "ref"))
    return root, time.time() - start


def final_weights(exp):
    return weights_digest(exp / "checkpoints" / "latest.pth"), weights_digest(exp / "model.pth")


@pytest.mark.slow
def test_resume_at_an_epoch_boundary_is_bit_exact(reference):
    root, _ = reference
    exp = root / "split"
    run_py("ee_asr.bin.train", *train_args(root, exp, "--max-epoch", "1"))
    epoch1 = digests(exp / "checkpoints")["epoch1.pth"]
    run_py("ee_asr.bin.train", *train_args(root, exp))
    assert "resumed from" in (exp / "train.rank0.log").read_text()
    assert final_weights(exp) == final_weights(root / "ref")
    assert digests(exp / "checkpoints").get("epoch1.pth", epoch1) == epoch1  # kept or pruned, never rewritten


@pytest.mark.slow
def test_kill_9_at_a_random_point_then_rerun_equals_an_uninterrupted_run(reference):
    root, _ = reference
    exp = root / "killed"
    seed = random.randrange(1 << 30)
    # into epoch 2: an epoch takes 0.1 s on a quiet machine, 1 s on a loaded one; later than that
    # the run may have finished (and released its lock) before the kill lands
    delay = random.Random(seed).uniform(0.0, 0.05)
    proc = subprocess.Popen([sys.executable, "-m", "ee_asr.bin.train", *train_args(root, exp)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (exp / "checkpoints" / "epoch1.pth.sha256").exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before the kill"
    assert (exp / ".lock").exists()  # left behind by the killed run
    run_py("ee_asr.bin.train", *train_args(root, exp))  # takes over the dead run's lock
    log = (exp / "train.rank0.log").read_text()
    assert "taking over a stale lock" in log and "resumed from" in log
    assert final_weights(exp) == final_weights(root / "ref"), f"killed {delay:.2f}s into epoch 2 (seed {seed})"
    assert not (exp / ".lock").exists()
