"""Several nodes: two torchrun launchers on this machine act as two nodes meeting at a c10d
rendezvous on 127.0.0.1; asr.sh's launcher for --num-nodes; threads per rank."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_training import tiny_setup, train_cmd  # noqa: F401  (tiny_setup is a fixture)

from conftest import ROOT, free_port
from ee_asr.train.checkpoint import CheckpointManager
from ee_asr.train.distributed import threads_per_rank

TORCHRUN = Path(sys.executable).parent / "torchrun"


def launch_node(rank, port, args, tag):
    """One node: a torchrun launcher in its own process group (so kill -9 takes the whole node)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [str(TORCHRUN), "--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", tag,
           "-m", "ee_asr.bin.train", *args, "--dist-timeout", "60"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def descendants(pid):
    """Every process below `pid` (from /proc): torchrun starts each worker in a session of its own,
    so killing the launcher's process group leaves the workers running."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_node(p):
    """SIGKILL a whole node: its launcher's process group and every worker below it."""
    below = descendants(p.pid)
    for pid in [p.pid, *below]:
        try:
            os.killpg(pid, signal.SIGKILL) if pid == p.pid else os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def finish(procs, timeout=300):
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            kill_node(p)
            outs.append(p.communicate()[0])
    return outs


def digest_lines(exp):
    return [line for line in (exp / "train.rank0.log").read_text().splitlines() if "parameter digests" in line]


# a tiny epoch takes ~50 ms on a fast CPU; the killed run asks for so many that it cannot finish
# before the kill, and the resumed runs ask for a couple more than were saved
EPOCHS_NEVER_REACHED = 100_000


@pytest.mark.slow
def test_two_nodes_agree_write_once_and_resume_together_after_kill_9(tiny_setup):  # noqa: F811
    root = tiny_setup
    exp = root / "exp_2nodes"
    sd = ["--set", "encoder_conf.stochastic_depth_rate=0.3"]
    port = free_port()
    nodes = [launch_node(r, port, train_cmd(root, exp, EPOCHS_NEVER_REACHED) + sd, "t1") for r in (0, 1)]
    ckpt = exp / "checkpoints" / "history.json"  # written last when an epoch is saved
    deadline = time.time() + 240
    while not ckpt.exists() and time.time() < deadline and all(p.poll() is None for p in nodes):
        time.sleep(0.05)
    assert ckpt.exists(), finish(nodes, 5)
    kill_node(nodes[1])  # node 1 dies mid-run, its launcher and its worker
    outs = finish(nodes, timeout=120)  # node 0 notices (its collective fails) and stops
    assert nodes[0].returncode != 0, outs[0][-2000:]
    # where a resume starts: latest.pth, or previous.pth where node 0's agent stopped rank 0
    # inside a later save, between moving latest aside and writing the new one
    state, resume_path = CheckpointManager(exp, keep_nbest=1).resume_state()
    resumed = state["epoch"]
    assert resumed >= 1
    epochs = resumed + 2

    port = free_port()
    nodes = [launch_node(r, port, train_cmd(root, exp, epochs) + sd, "t2") for r in (0, 1)]
    outs = finish(nodes)
    assert [p.returncode for p in nodes] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    log = (exp / "train.rank0.log").read_text()
    assert f"resumed from {resume_path} after epoch {resumed}" in log
    # rank 0 gathered every rank's resume point and they agreed
    assert f"all 2 ranks start after epoch {resumed}" in log
    history = [h["epoch"] for h in json.loads((exp / "checkpoints" / "history.json").read_text())]
    assert history == list(range(1, epochs + 1))  # each epoch recorded once: only rank 0 writes
    assert not list(exp.glob("checkpoints/*.tmp")) and not list(exp.glob("checkpoints/.*"))
    for line in digest_lines(exp):
        digests = line.split(": ", 2)[-1].split()
        assert len(digests) == 2 and digests[0] == digests[1]

    # node 1 without the shared filesystem: it sees an experiment dir with no checkpoints
    lonely = root / "exp_2nodes_elsewhere"
    port = free_port()
    nodes = [launch_node(0, port, train_cmd(root, exp, epochs + 1) + sd, "t3"),
             launch_node(1, port, train_cmd(root, lonely, epochs + 1) + sd, "t3")]
    outs = finish(nodes)
    assert all(p.returncode != 0 for p in nodes)
    text = "\n".join(outs)
    assert "the ranks would resume from different points" in text
    assert f"rank 0: epoch {epochs}" in text and "rank 1: epoch 0" in text and "shared filesystem" in text
    history = [h["epoch"] for h in json.loads((exp / "checkpoints" / "history.json").read_text())]
    assert history == list(range(1, epochs + 1))


def test_threads_per_rank_share_the_node_cores():
    assert threads_per_rank(4, 1, cores=8) == 4   # alone: what the config asks
    assert threads_per_rank(4, 4, cores=8) == 2   # four ranks on 8 cores: 2 each
    assert threads_per_rank(2, 2, cores=2) == 1
    assert threads_per_rank(2, 4, cores=2) == 1   # never 0


def test_asr_sh_launches_torchrun_per_node(tmp_path):
    """--num-nodes N makes stage 4 run `torchrun --nnodes N --node-rank R ... c10d` through $train_cmd."""
    from conftest import copy_recipe

    recipe = copy_recipe(ROOT / "egs" / "mini_tts" / "conformer_ctc_ee", tmp_path / "recipe")
    record = tmp_path / "launched"
    (recipe / "cmd.sh").write_text(
        f'export train_cmd="{ROOT}/tests/record_args.sh {record}"\nexport decode_cmd="$train_cmd"\n')
    proc = subprocess.run(["./asr.sh", "--train-config", "conf/train_conformer_ctc_ee.yaml", "--stage", "4",
                           "--stop-stage", "4", "--num-nodes", "2", "--node-rank", "1",
                           "--master-addr", "10.1.2.3", "--master-port", "29555", "--num-procs", "2"],
                          cwd=recipe, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    words = record.read_text().split("\n")
    i = words.index("torchrun")
    launched = words[i:]
    for flag, value in (("--nnodes", "2"), ("--node-rank", "1"), ("--nproc-per-node", "2"),
                        ("--rdzv-backend", "c10d"), ("--rdzv-endpoint", "10.1.2.3:29555")):
        assert launched[launched.index(flag) + 1] == value
    assert words[:i][-1].endswith("train.node1.log") and "--num-threads" in words[:i]
    # one node: torchrun --standalone (several processes) or plain python
    proc = subprocess.run(["./asr.sh", "--train-config", "conf/train_conformer_ctc_ee.yaml", "--stage", "4",
                           "--stop-stage", "4", "--num-procs", "2", "--tag", "one"],
                          cwd=recipe, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--standalone" in record.read_text().split("\n")
