"""Stages keyed on the content of what they read (utils/stage.sh over ee_asr/common/stage_inputs.py),
shared artefacts published under content-addressed names (common/artefacts.py) and the stage locks:
an edited input reruns its stage and says which, a touched one does not, an old token model stays,
a second run of a stage refuses before removing anything."""

import json
import os
import signal
import subprocess
import time

import pytest
from test_stages import RECIPE, STAGE_ENV, bash, put

from conftest import ROOT, copy_recipe, sigint_as_in_a_terminal, write_wav
from ee_asr.common import stage_inputs
from ee_asr.common.artefacts import current, publish


def data_dir(root, name="test"):
    d = root / "data" / name
    d.mkdir(parents=True)
    for i in range(3):
        write_wav(root / f"a{i}.wav", 0.2, seed=i)
    (d / "wav.scp").write_text("".join(f"u{i} a{i}.wav\n" for i in range(3)))
    (d / "text").write_text("u0 one two\nu1 three\nu2 four five\n")
    (d / "utt2spk").write_text("u0 s\nu1 s\nu2 s\n")
    return d


def skip(root, inputs="data/test", opts="n_mels=80", env=""):
    return bash(root, f"{env} stage_skip 2 dump/test '{opts}' {inputs}")


def test_an_edited_transcript_reruns_the_stage_and_says_which(tmp_path):
    data_dir(tmp_path)
    assert skip(tmp_path).returncode == 1  # never ran
    assert bash(tmp_path, "stage_end 2 dump/test 'n_mels=80'").returncode == 0
    assert skip(tmp_path).returncode == 0
    text = tmp_path / "data" / "test" / "text"
    text.write_text(text.read_text().replace("three", "tree"))
    proc = skip(tmp_path)
    assert proc.returncode == 1 and "data/test/text changed since stage 2 ran" in proc.stderr, proc.stderr
    # other options: said too
    proc = skip(tmp_path, opts="n_mels=40")
    assert proc.returncode == 1 and "Stage 2: its options changed since it ran (were: n_mels=80)" in proc.stderr


def test_a_touched_input_of_the_same_content_reruns_nothing(tmp_path):
    data_dir(tmp_path)
    bash(tmp_path, "stage_skip 2 dump/test 'n_mels=80' data/test || true; stage_end 2 dump/test 'n_mels=80'")
    text = tmp_path / "data" / "test" / "text"
    os.utime(text, ns=(text.stat().st_atime_ns, text.stat().st_mtime_ns + 10**9))
    proc = skip(tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_changed_audio_reruns_the_stage(tmp_path):
    data_dir(tmp_path)
    bash(tmp_path, "stage_skip 2 dump/test 'n_mels=80' data/test || true; stage_end 2 dump/test 'n_mels=80'")
    write_wav(tmp_path / "a1.wav", 0.3, seed=7)
    proc = skip(tmp_path)
    assert proc.returncode == 1 and "files listed in data/test/wav.scp changed" in proc.stderr, proc.stderr
    # a data file added or removed is named
    bash(tmp_path, "stage_skip 2 dump/test 'n_mels=80' data/test || true; stage_end 2 dump/test 'n_mels=80'")
    (tmp_path / "data" / "test" / "segments").write_text("u0 a0 0 0.1\n")
    proc = skip(tmp_path)
    assert proc.returncode == 1 and "data/test/segments was added" in proc.stderr


def test_feature_archives_are_checked_by_size_and_time_not_read(tmp_path, monkeypatch):
    dump = tmp_path / "dump"
    dump.mkdir()
    ark = put(tmp_path / "dump" / "split" / "feats.1.ark", "features")
    scp = put(dump / "feats.scp", f"u0 {ark}:10\nu1 {ark}:99\n")
    os.utime(scp, ns=(scp.stat().st_atime_ns, scp.stat().st_mtime_ns - 10**10))  # not just written
    read = []
    real = stage_inputs.file_sha256
    monkeypatch.setattr(stage_inputs, "file_sha256", lambda p: read.append(os.path.basename(p)) or real(p))
    before = stage_inputs.manifest([str(dump)])
    assert read == ["feats.scp"] and before[str(dump)]["listed"]["feats.scp"]["files"] == 1
    ark.write_text("other features")  # stage 2 rerun: the archive rewritten
    after = stage_inputs.manifest([str(dump)], before)
    assert read == ["feats.scp"]  # feats.scp unchanged (cached), the ark never read
    assert stage_inputs.changes(before, after) == [
        f"files listed in {dump}/feats.scp changed (size or modification time)"]


def test_a_file_rewritten_within_the_clock_granularity_is_read_again(tmp_path):
    f = put(tmp_path / "text", "one")
    before = stage_inputs.manifest([str(f)])
    st = f.stat()
    f.write_text("two")  # the same size; the same time, as a coarse clock would give
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert stage_inputs.changes(before, stage_inputs.manifest([str(f)], before)) == [f"{f} changed"]


def test_a_marker_from_before_input_digests_is_kept_when_its_options_match(tmp_path):
    data_dir(tmp_path)
    put(tmp_path / "dump" / "test" / ".stage2.done", "n_mels=80 data=abc\n")
    proc = skip(tmp_path, env="stage_legacy='n_mels=80 data=abc'")
    assert proc.returncode == 0, proc.stderr
    marker = json.loads((tmp_path / "dump" / "test" / ".stage2.done").read_text())
    assert marker["options"] == "n_mels=80" and "data/test" in marker["inputs"]  # upgraded
    put(tmp_path / "dump" / "test" / ".stage2.done", "n_mels=80 data=old\n")
    proc = skip(tmp_path, env="stage_legacy='n_mels=80 data=abc'")
    assert proc.returncode == 1 and "predates input digests" in proc.stderr


def test_changed_inputs_of_a_refusing_stage_are_refused_but_new_options_are_not(tmp_path):
    put(tmp_path / "conf.yaml", "a: 1\n")
    bash(tmp_path, "stage_skip 4 exp 'epochs=1' conf.yaml || true; stage_end 4 exp 'epochs=1'")
    assert bash(tmp_path, "stage_refuse_changes=1 stage_skip 4 exp 'epochs=2' conf.yaml").returncode == 1
    put(tmp_path / "conf.yaml", "a: 2\n")
    proc = bash(tmp_path, "stage_refuse_changes=1 stage_skip 4 exp 'epochs=1' conf.yaml")
    assert proc.returncode == 3 and "ran on other inputs: conf.yaml changed since stage 4 ran" in proc.stderr


def test_a_downloaded_tree_is_keyed_by_its_files_stats_as_the_stage_left_it(tmp_path, monkeypatch):
    corpus = tmp_path / "downloads" / "LibriSpeech"
    for part in ("train-clean-100", "test-clean"):
        put(corpus / part / "19" / "198" / "19-198.trans.txt", "19-198-0000 A\n")
    # the stage fills its own input tree (a download): recorded as it is when the stage ends
    bash(tmp_path, "stage_skip 1 data 'o' tree:downloads || true")
    put(tmp_path / "downloads" / "test-clean.tar.gz", "archive")
    assert bash(tmp_path, "stage_end 1 data 'o'").returncode == 0
    assert bash(tmp_path, "stage_skip 1 data 'o' tree:downloads").returncode == 0
    monkeypatch.setattr(stage_inputs, "file_sha256", lambda p: pytest.fail(f"{p} was read"))
    assert "groups" in stage_inputs.describe(f"tree:{tmp_path / 'downloads'}")  # stats only, never read
    edited = put(corpus / "test-clean" / "19" / "198" / "19-198.trans.txt", "19-198-0000 B\n")
    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 10**9))  # a coarse clock
    put(tmp_path / "downloads" / "LibriSpeech" / "dev-other" / "x.flac", "x")
    proc = bash(tmp_path, "stage_skip 1 data 'o' tree:downloads")
    assert proc.returncode == 1, proc.stderr
    assert "downloads/LibriSpeech/test-clean: files changed, added or removed" in proc.stderr
    assert "downloads/LibriSpeech/dev-other was added" in proc.stderr
    assert "train-clean-100" not in proc.stderr


def test_a_stage_refusing_other_options_still_reruns_on_changed_inputs(tmp_path):
    put(tmp_path / "local" / "data.sh", "echo a\n")
    bash(tmp_path, "stage_skip 1 data 'size=tiny' local || true; stage_end 1 data 'size=tiny'")
    proc = bash(tmp_path, "stage_refuse_option_changes=1 stage_skip 1 data 'size=demo' local")
    assert proc.returncode == 3 and "its options changed since it ran (were: size=tiny)" in proc.stderr
    put(tmp_path / "local" / "data.sh", "echo b\n")
    proc = bash(tmp_path, "stage_refuse_option_changes=1 stage_skip 1 data 'size=tiny' local")
    assert proc.returncode == 1 and "local/data.sh changed since stage 1 ran" in proc.stderr


def test_a_new_token_model_never_replaces_the_one_experiments_read(tmp_path):
    store = tmp_path / "token_list"
    put(store / ".new" / "bpe.model", "model one")
    put(store / ".new" / "bpe.vocab", "vocab one")
    first = publish(store / ".new", store, "bpe.model")
    old_path = (store / "bpe.model").resolve()  # what an experiment trained now records
    assert old_path == first / "bpe.model" and current(store, "bpe.model") == store / "current" / "bpe.model"
    put(store / ".new" / "bpe.model", "model two")
    put(store / ".new" / "bpe.vocab", "vocab two")
    second = publish(store / ".new", store, "bpe.model")
    assert second != first and old_path.read_text() == "model one"
    assert (store / "current" / "bpe.model").read_text() == "model two"
    assert (store / "bpe.vocab").read_text() == "vocab two" and not (store / ".new").exists()
    # the same content again: the existing version, nothing rewritten
    put(store / ".new" / "bpe.model", "model one")
    assert publish(store / ".new", store, "bpe.model") == first and old_path.read_text() == "model one"


def test_a_token_model_of_the_layout_before_versions_is_kept(tmp_path):
    store = tmp_path / "token_list"
    legacy = put(store / "bpe.model", "trained before versions")
    assert current(store, "bpe.model") == legacy
    put(store / ".new" / "bpe.model", "new model")
    publish(store / ".new", store, "bpe.model")
    assert legacy.read_text() == "trained before versions" and not legacy.is_symlink()
    assert current(store, "bpe.model").read_text() == "new model"


def test_a_second_stage_5_refuses_naming_the_first_and_removes_nothing(tmp_path):
    recipe = copy_recipe(RECIPE, tmp_path / "recipe")
    exp = recipe / "exp" / "conformer_ctc_ee_unigram1000"
    kept = [put(exp / "exit_classifier.json", "{}"), put(exp / "decode_test" / "split" / "utts.1", "u1"),
            put(exp / "decode_test" / "policy_entropy" / "thr_0.1" / "text", "u1 a"),
            put(exp / "decode_test" / "log" / "decode.1.log", "running")]
    # the first decode holds the experiment (the lock stage 5 takes before it removes anything)
    first = subprocess.Popen(["bash", "-c", f". {ROOT}/utils/stage.sh; stage_lock {exp} 'stage 5 (decoding)'; "
                              "echo locked; sleep 60"], cwd=recipe, env=STAGE_ENV, stdout=subprocess.PIPE,
                             text=True, start_new_session=True, preexec_fn=sigint_as_in_a_terminal)
    try:
        assert first.stdout.readline().strip() == "locked"
        second = subprocess.run(["./run.sh", "--stage", "5", "--stop-stage", "5", "--policy-grid", "fixed:2"],
                                cwd=recipe, capture_output=True, text=True, timeout=120)
        assert second.returncode != 0 and "is in use by stage 5 (decoding)" in second.stderr, second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert all(p.is_file() for p in kept)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # the first is gone without releasing it: its lock is stale and taken over
    proc = bash(recipe, f"stage_lock {exp} 'stage 6 (scoring)' && stage_unlock {exp}")
    assert proc.returncode == 0 and "taking over a stale lock" in proc.stderr, proc.stderr
    assert not (exp / ".stage.lock").exists()


def test_a_lock_is_released_when_the_script_ends(tmp_path):
    proc = bash(tmp_path, "stage_traps; stage_lock exp 'stage 5'; test -f exp/.stage.lock; false")
    assert proc.returncode != 0 and not (tmp_path / "exp" / ".stage.lock").exists()
    assert bash(tmp_path, "stage_lock exp 'stage 5'; stage_lock exp 'stage 6'").returncode == 0  # its own: again


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_stage_says_so_and_releases_its_lock(tmp_path, sig):
    script = (f". {ROOT}/utils/stage.sh; stage_traps; stage_lock exp 'stage 4 (training)'; "
              "sleep 30 > /dev/null 2>&1 & echo $! > sleeper; echo locked; wait")
    proc = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=STAGE_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=sigint_as_in_a_terminal)
    assert proc.stdout.readline().strip() == "locked"
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig and f"interrupted by {sig.name} during stage 4 (training)" in err, err
    assert not (tmp_path / "exp" / ".stage.lock").exists()
    os.kill(int((tmp_path / "sleeper").read_text()), signal.SIGKILL)
