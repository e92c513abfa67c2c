"""A real one-node Slurm cluster on this machine (utils/slurm_local_cluster.sh: Debian's slurm-wlm
and munge, installed with apt-get when missing): the tiny recipe's stage 2 and split decoding
through utils/run_slurm.sh, and a training job through sbatch/srun + torchrun. Skipped, saying
why, where the cluster cannot be installed or started (no root, no apt-get, no network)."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_training import tiny_setup, train_cmd  # noqa: F401  (tiny_setup is a fixture)

from conftest import ROOT, clone_recipe, free_port

pytestmark = pytest.mark.slow
HELPER = ROOT / "utils" / "slurm_local_cluster.sh"


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    """Start the cluster (its own state dir and ports), yield the environment for its clients, stop it."""
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "SLURM_LOCAL_DIR": str(state), "SLURM_LOCAL_PORT": str(free_port(2))}
    # the daemons' port pair: controller on PORT, slurmd on PORT + 1
    try:
        start = subprocess.run([str(HELPER), "start"], env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("starting a local Slurm cluster took over 5 minutes")
    if start.returncode != 0:
        subprocess.run([str(HELPER), "stop"], env=env, capture_output=True, timeout=60)
        pytest.skip(f"no local Slurm cluster: {start.stderr.strip().splitlines()[-1] if start.stderr.strip() else '?'}")
    env["SLURM_CONF"] = str(state / "slurm.conf")
    env["PYTHONPATH"] = str(ROOT)
    yield env
    subprocess.run([str(HELPER), "stop"], env=env, capture_output=True, timeout=60)


def use_slurm(recipe):
    (recipe / "cmd.sh").write_text('export train_cmd="utils/run_slurm.sh"\nexport decode_cmd="utils/run_slurm.sh"\n')


def run(recipe, env, *args):
    return subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", "--nbpe", "100", *args], cwd=recipe,
                          env=env, capture_output=True, text=True, timeout=600)


def test_stage_2_and_split_decoding_through_run_slurm(slurm_env, tiny_trained_recipe, tmp_path):
    recipe = clone_recipe(tiny_trained_recipe, tmp_path / "recipe")
    use_slurm(recipe)
    proc = run(recipe, slurm_env, "--stage", "2", "--stop-stage", "2", "--dumpdir", "dump_slurm")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for d in ("train", "dev", "test"):
        local = (recipe / "dump" / "fbank" / d / "utt2num_frames").read_text()
        assert (recipe / "dump_slurm" / "fbank" / d / "utt2num_frames").read_text() == local
        log = (recipe / "dump_slurm" / "fbank" / d / "log" / "features.2.log").read_text()
        assert "(Slurm job" in log and "# ended (exit 0)" in log
    assert (recipe / "dump_slurm" / "fbank" / "train" / "cmvn.npz").is_file()

    proc = run(recipe, slurm_env, "--stage", "5", "--stop-stage", "5", "--decode-nj", "2",
               "--decode-batch-bins", "1500", "--policy-grid", "entropy:0.1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    decoded = recipe / "exp" / "conformer_ctc_ee_unigram100" / "decode_test"
    assert "test: 2 decoding jobs merged" in proc.stderr
    for j in (1, 2):
        assert "(Slurm job" in (decoded / "log" / f"decode.{j}.log").read_text()
    assert len((decoded / "exits.jsonl").read_text().splitlines()) == 2 * 20
    assert (decoded / "policy_entropy" / "thr_0.1" / "summary.json").is_file()


def test_a_failing_slurm_task_is_named(slurm_env, tmp_path):
    proc = subprocess.run([str(ROOT / "utils" / "run_slurm.sh"), "JOB=1:3", "logs/JOB/t.log", "bash", "-c",
                           '[ "$0" != 3 ]', "JOB"], cwd=tmp_path, env=slurm_env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "1 of 3 jobs failed: JOB=3" in proc.stderr and "logs/3/t.log" in proc.stderr


def test_training_through_sbatch_srun_torchrun(slurm_env, tiny_setup, tmp_path):  # noqa: F811
    exp = tmp_path / "exp"
    torchrun = Path(sys.executable).parent / "torchrun"
    # the multi-node form (c10d rendezvous on the first node of the allocation) on one node
    launch = [str(torchrun), "--nnodes", "1", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
              "--rdzv-endpoint", f"localhost:{free_port()}", "-m", "ee_asr.bin.train", *train_cmd(tiny_setup, exp, 1)]
    log = tmp_path / "train.%j.log"
    proc = subprocess.run(["sbatch", "--wait", "--nodes", "1", "--ntasks-per-node", "1", "--cpus-per-task", "2",
                           f"--output={log}", "--wrap", f"srun {shlex.join(launch)}"],
                          cwd=tmp_path, env={**slurm_env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=600)
    logs = "".join(p.read_text() for p in tmp_path.glob("train.*.log"))
    assert proc.returncode == 0, proc.stderr + logs[-3000:]
    lines = [line for line in (exp / "train.rank0.log").read_text().splitlines() if "parameter digests" in line]
    digests = lines[-1].split(": ", 2)[-1].split()
    assert len(digests) == 2 and digests[0] == digests[1]
    assert (exp / "model.pth").is_file()
