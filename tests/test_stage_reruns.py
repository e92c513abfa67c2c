"""The mini recipe rerun from stage 1 after an input was edited redoes exactly the stages that read
it, and says why; a retrained token model never makes the trained experiment undecodable."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from conftest import TINY_TRAIN_ARGS, clone_recipe, sigint_as_in_a_terminal

EXP = "exp/conformer_ctc_ee_unigram100"


def run(recipe, *args):
    return subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", "--nbpe", "100", "--train-args",
                           TINY_TRAIN_ARGS, "--decode-batch-bins", "1500", "--policy-grid", "entropy:0.1", *args],
                          cwd=recipe, capture_output=True, text=True, timeout=900)


def ran(stderr):
    """The stages a run did (not skipped): '2:<set>', '3', '4', '5', '6'."""
    done = {f"2:{m}" for m in re.findall(r"Stage 2: fbank features of data/(\S+) into", stderr)}
    for stage, line in (("3", "Stage 3: sentencepiece unigram with"), ("4", "Stage 4: training"),
                        ("5", "Stage 5: decoding test at every exit"), ("6", "Stage 6: scoring")):
        if line in stderr:
            done.add(stage)
    return done


def edit_line(path, n, change):
    lines = path.read_text().splitlines(keepends=True)
    lines[n] = change(lines[n])
    path.write_text("".join(lines))
    return lines[n]


@pytest.mark.slow
def test_an_edited_input_reruns_exactly_the_stages_that_read_it(tiny_trained_recipe, tmp_path):
    recipe = clone_recipe(tiny_trained_recipe, tmp_path / "recipe")
    exp = recipe / EXP
    first = run(recipe)
    assert first.returncode == 0, first.stderr[-3000:]
    assert ran(first.stderr) == {"5", "6"}, first.stderr[-3000:]
    again = run(recipe)
    assert again.returncode == 0 and ran(again.stderr) == set(), again.stderr[-3000:]

    # a transcript of the test set edited (and its first audio moved to a copy): the test set's
    # features, its decoding and the scores, nothing else; the new reference is scored
    test = recipe / "data" / "test"
    line = edit_line(test / "text", 0, lambda s: s.rstrip("\n") + " zebra\n")
    audio = tmp_path / "moved.wav"
    edit_line(test / "wav.scp", 0, lambda s: shutil.copy(s.split()[1], audio) and f"{s.split()[0]} {audio}\n")
    proc = run(recipe)
    assert proc.returncode == 0 and ran(proc.stderr) == {"2:test", "5", "6"}, proc.stderr[-3000:]
    assert "data/test/text changed since stage 2 ran" in proc.stderr
    assert "dump/fbank/test/text changed since stage 5 ran" in proc.stderr
    utt = line.split()[0]
    refs = {r["ref"] for r in map(json.loads, (exp / "decode_test" / "exits.jsonl").read_text().splitlines())
            if r["utt"] == utt}
    assert refs == {" ".join(line.split()[1:])}

    # the audio itself changed (wav.scp as it was): the same stages
    shutil.copy(next(p for p in (recipe.parent / "downloads").rglob("*.wav") if p.stat().st_size
                     != audio.stat().st_size), audio)
    proc = run(recipe)
    assert proc.returncode == 0 and ran(proc.stderr) == {"2:test", "5", "6"}, proc.stderr[-3000:]
    assert "files listed in data/test/wav.scp changed" in proc.stderr

    # a word of the training text: features of train, a new token model beside the old; training
    # is refused (it would replace the experiment), which still decodes with its own token model
    config = yaml.safe_load((exp / "config.yaml").read_text())
    old_bpe = config["bpemodel"]
    edit_line(recipe / "data" / "train" / "text", 0, lambda s: s.rstrip("\n") + " zebra\n")
    proc = run(recipe)
    assert proc.returncode != 0 and ran(proc.stderr) == {"2:train", "3"}, proc.stderr[-3000:]
    assert "data/token_list/unigram100/current/bpe.model changed since stage 4 ran" in proc.stderr
    assert "Train beside it with --tag" in proc.stderr
    current = (recipe / "data" / "token_list" / "unigram100" / "current" / "bpe.model").resolve()
    assert current.is_file() and str(current) != old_bpe and os.path.isfile(old_bpe)
    proc = run(recipe, "--stage", "5", "--policy-grid", "entropy:0.2")
    assert proc.returncode == 0 and ran(proc.stderr) == {"5", "6"}, proc.stderr[-3000:]
    assert (exp / "decode_test" / "policy_entropy" / "thr_0.2").is_dir()


def training_processes(tag):
    """Processes whose arguments name exp/<tag> (the training a stage 4 started)."""
    found = []
    for proc in os.listdir("/proc"):
        try:
            args = open(f"/proc/{proc}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if f"exp/{tag}".encode() in args:
            found.append(int(proc))
    return found


@pytest.mark.slow
def test_ctrl_c_during_training_stops_it_and_a_rerun_trains(tiny_trained_recipe, tmp_path):
    recipe = clone_recipe(tiny_trained_recipe, tmp_path / "recipe")
    args = ["./run.sh", "--local-data-opts", "--size tiny", "--nbpe", "100", "--train-args", TINY_TRAIN_ARGS,
            "--stage", "4", "--stop-stage", "4", "--tag", "again"]
    proc = subprocess.Popen(args, cwd=recipe, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=sigint_as_in_a_terminal)
    log = recipe / "exp" / "again" / "train.log"
    deadline = time.monotonic() + 300
    while not (log.is_file() and [x for x in log.read_text().splitlines() if x and not x.startswith("#")]):
        assert time.monotonic() < deadline and proc.poll() is None, "training did not start"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted by SIGINT during stage 4 (training)" in err, err[-3000:]
    assert "# interrupted at" in log.read_text()
    deadline = time.monotonic() + 20
    while training_processes("again") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not training_processes("again"), "the training outlived Ctrl-C"
    assert not (recipe / "exp" / "again" / ".stage.lock").exists()
    rerun = subprocess.run(args, cwd=recipe, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0 and (recipe / "exp" / "again" / ".stage4.done").is_file(), rerun.stderr[-3000:]


@pytest.mark.slow
def test_stage_7_exports_again_exactly_when_the_model_or_its_check_data_changed(tiny_trained_recipe, tmp_path):
    recipe = clone_recipe(tiny_trained_recipe, tmp_path / "recipe")
    exported = recipe / EXP / "onnx" / "manifest.json"
    first = run(recipe, "--stage", "7", "--stop-stage", "7", "--export-max-cer-increase", "1000")
    assert first.returncode == 0 and "Stage 7: exporting" in first.stderr, first.stderr[-3000:]
    stamp = exported.stat().st_mtime_ns
    again = run(recipe, "--stage", "7", "--stop-stage", "7", "--export-max-cer-increase", "1000")
    assert again.returncode == 0 and "Stage 7: ONNX export already done" in again.stderr, again.stderr[-3000:]
    assert exported.stat().st_mtime_ns == stamp
    # the int8 check's data (the first test set's dump) changed: the export is redone, and says why
    edit_line(recipe / "dump" / "fbank" / "test" / "text", 0, lambda s: s.rstrip("\n") + " zebra\n")
    changed = run(recipe, "--stage", "7", "--stop-stage", "7", "--export-max-cer-increase", "1000")
    assert changed.returncode == 0 and "Stage 7: exporting" in changed.stderr, changed.stderr[-3000:]
    assert "dump/fbank/test/text changed since stage 7 ran" in changed.stderr
    assert exported.stat().st_mtime_ns != stamp


@pytest.mark.slow
def test_a_changed_download_reruns_stage_1_and_names_its_folder(tiny_trained_recipe, tmp_path):
    recipe = clone_recipe(tiny_trained_recipe, tmp_path / "recipe")
    same = run(recipe, "--stage", "1", "--stop-stage", "1")
    assert same.returncode == 0 and "Stage 1: data prep already done" in same.stderr, same.stderr[-3000:]
    # a file of the corpus as downloaded went missing: stage 1 runs again, says where, restores it
    wav = sorted((recipe.parent / "downloads" / "mini_tts" / "test").glob("*.wav"))[0]
    wav.unlink()
    proc = run(recipe, "--stage", "1", "--stop-stage", "1")
    assert proc.returncode == 0 and "Stage 1: data prep: local/data.sh" in proc.stderr, proc.stderr[-3000:]
    assert "downloads/mini_tts/test: files changed, added or removed (size or modification time) since stage 1 ran" \
        in proc.stderr
    assert wav.is_file()
    again = run(recipe, "--stage", "1", "--stop-stage", "1")
    assert again.returncode == 0 and "Stage 1: data prep already done" in again.stderr, again.stderr[-3000:]
    # the recipe's own data prep script edited: the same
    data_sh = recipe / "local" / "data.sh"
    data_sh.write_text(data_sh.read_text() + "# edited\n")
    edited = run(recipe, "--stage", "1", "--stop-stage", "1")
    assert edited.returncode == 0 and "local/data.sh changed since stage 1 ran" in edited.stderr, edited.stderr[-3000:]
