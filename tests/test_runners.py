"""The job runners (utils/run_local.sh, utils/run_slurm.sh): literal arguments, JOB anywhere in
the log path, failed tasks named. run_slurm.sh runs here against a stand-in `sbatch` that runs
the array's tasks one after another as Slurm would (tests/test_slurm.py uses a real cluster)."""

import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT, sigint_as_in_a_terminal

FAKE_SBATCH = r"""#!/usr/bin/env bash
# stand-in for `sbatch --wait --array=A-B[%K] --output=PAT ... SCRIPT`: runs each task in turn
array=""; out=""; script=""
for a in "$@"; do
  case $a in --array=*) array=${a#--array=} ;; --output=*) out=${a#--output=} ;; -*) ;; *) script=$a ;; esac
done
range=${array%%\%*}; first=${range%-*}; last=${range#*-}; rc=0
for ((t = first; t <= last; t++)); do
  o=${out//%A/77}; o=${o//%a/$t}
  SLURM_ARRAY_TASK_ID=$t SLURM_JOB_ID=77 bash "$script" > "$o" 2>&1 || rc=1
done
echo 77
exit $rc
"""

ODD_ARGS = ['a"b', "c$HOME", "$(touch pwned)", "two words", "it's", "back\\slash", "*", ""]


@pytest.fixture(params=["run_local", "run_slurm"])
def runner(request, tmp_path):
    env = dict(os.environ)
    if request.param == "run_slurm":
        bindir = tmp_path / "fakebin"
        bindir.mkdir()
        (bindir / "sbatch").write_text(FAKE_SBATCH)
        (bindir / "sbatch").chmod(0o755)
        env["PATH"] = f"{bindir}:{env['PATH']}"
    work = tmp_path / "work"
    work.mkdir()

    def run(*args):
        return subprocess.run([str(ROOT / "utils" / f"{request.param}.sh"), *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=60)

    run.work = work
    return run


def test_arguments_reach_the_command_literally(runner):
    proc = runner("JOB=1:2", "log/args.JOB.log", "bash", "-c", 'printf "%s\\n" "$@" > "$0"', "out.JOB.txt",
                  *ODD_ARGS, "job JOB")
    assert proc.returncode == 0, proc.stderr
    for j in (1, 2):
        got = (runner.work / f"out.{j}.txt").read_text().split("\n")[:-1]
        assert got == ODD_ARGS + [f"job {j}"]
    assert not (runner.work / "pwned").exists()


def test_job_may_name_directories_of_the_log_path(runner):
    proc = runner("JOB=1:3", "exp/JOB/logs/part.JOB.log", "echo", "task", "JOB")
    assert proc.returncode == 0, proc.stderr
    for j in (1, 2, 3):
        log = (runner.work / "exp" / str(j) / "logs" / f"part.{j}.log").read_text()
        assert f"task {j}\n" in log and "# ended (exit 0)" in log
    assert not [p for p in runner.work.rglob("*") if "%" in p.name]


def test_failed_tasks_are_named_with_their_logs(runner):
    proc = runner("JOB=1:4", "log/f.JOB.log", "bash", "-c", 'echo "doing $0"; [ "$0" != 2 ] && [ "$0" != 4 ]', "JOB")
    assert proc.returncode != 0
    assert "2 of 4 jobs failed: JOB=2,4" in proc.stderr
    assert "log/f.2.log" in proc.stderr and "log/f.4.log" in proc.stderr and "log/f.1.log" not in proc.stderr
    assert "doing 2" in proc.stderr  # the failed log's tail is shown
    assert "# ended (exit 0)" in (runner.work / "log" / "f.3.log").read_text()


def test_a_log_path_without_job_for_several_jobs_fails_before_running(runner):
    proc = runner("JOB=1:2", "log/shared.log", "touch", "ran.JOB")
    assert proc.returncode != 0 and "must contain JOB" in proc.stderr
    assert not list(runner.work.glob("ran.*"))


def test_a_single_job_needs_no_range(runner):
    proc = runner("--num-threads", "2", "--gpu", "0", "log/one.log", "echo", "hello")
    assert proc.returncode == 0, proc.stderr
    assert "hello" in (runner.work / "log" / "one.log").read_text()


def test_a_throttled_run_still_runs_and_checks_every_job(runner):
    proc = runner("--max-jobs-run", "1", "JOB=1:4", "log/t.JOB.log", "bash", "-c", '[ "$0" != 3 ]', "JOB")
    assert proc.returncode != 0 and "1 of 4 jobs failed: JOB=3" in proc.stderr
    assert all("# ended" in (runner.work / "log" / f"t.{j}.log").read_text() for j in (1, 2, 3, 4))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_every_local_job_and_their_logs_say_so(tmp_path, sig):
    # Ctrl-C signals the terminal's foreground process group: the runner's, here a session of its own
    proc = subprocess.Popen([str(ROOT / "utils" / "run_local.sh"), "JOB=1:2", "log/s.JOB.log", "bash", "-c",
                             'echo $$ > pid.$0; sleep 60 & echo $! > child.$0; wait', "JOB"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=sigint_as_in_a_terminal)
    pidfiles = [tmp_path / f"{kind}.{j}" for kind in ("pid", "child") for j in (1, 2)]
    deadline = time.monotonic() + 30
    while not all(p.is_file() and p.read_text().strip() for p in pidfiles):
        assert time.monotonic() < deadline and proc.poll() is None, "the jobs did not start"
        time.sleep(0.1)
    pids = [int(p.read_text()) for p in pidfiles]
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)  # a SIGTERM to the runner alone
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig and f"interrupted by {sig.name}" in err, err
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if alive(p)], "a job (or a job's child) outlived the runner"
    for j in (1, 2):
        assert "# interrupted at" in (tmp_path / "log" / f"s.{j}.log").read_text()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has ended
        return open(f"/proc/{pid}/stat").read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_ctrl_c_cancels_the_slurm_array(tmp_path):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    # a submitted array that runs until cancelled; scancel records what it was asked to cancel
    (bindir / "sbatch").write_text("#!/usr/bin/env bash\necho '77;cluster'\nexec sleep 60\n")
    (bindir / "scancel").write_text(f'#!/usr/bin/env bash\necho "$@" >> {tmp_path}/cancelled\n')
    for f in ("sbatch", "scancel"):
        (bindir / f).chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    proc = subprocess.Popen([str(ROOT / "utils" / "run_slurm.sh"), "JOB=1:2", "log/s.JOB.log", "sleep", "60"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=sigint_as_in_a_terminal)
    jobid = tmp_path / "log" / "q" / "s.JOB.log.jobid"
    deadline = time.monotonic() + 30
    while not (jobid.is_file() and jobid.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, "sbatch was not called"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted by SIGINT: cancelling Slurm job 77" in err, err
    assert (tmp_path / "cancelled").read_text() == "77\n"
