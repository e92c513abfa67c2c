"""Fault injection: bad inputs and faults against a tiny trained experiment. Each case asserts the
error text (one line, no traceback) and that what was written before is intact (digests before and
after). Resume after kill -9 is in test_faults_resume.py, the data-dir readers' properties in
test_datadir_properties.py."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from faults_setup import clone_exp, digests, make_corpus, train_args, weights_digest

from conftest import ROOT, make_dump, run_py
from ee_asr.common.cli import run_main
from ee_asr.common.errors import UserError
from ee_asr.common.lock import DirLock
from ee_asr.data.tokenizer import train_sentencepiece
from ee_asr.models.load import load_trained
from ee_asr.train.checkpoint import CheckpointManager, save
from ee_asr.train.config import load_config

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def trained(corpus):
    exp = corpus / "exp"
    run_py("ee_asr.bin.train", *train_args(corpus, exp, "--max-epoch", "1"))
    return exp


@pytest.fixture
def exp(corpus, trained, tmp_path):
    """A private copy of the trained experiment, with its own token model and CMVN file."""
    return clone_exp(corpus, trained, tmp_path / "copy")


def cli(capsys, module, *args):
    """Run a bin tool in this process as its entry point does; (exit code, stdout, stderr)."""
    mod = __import__(f"ee_asr.bin.{module}", fromlist=["main"])
    code = 0
    try:
        run_main(mod.main, [str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def decode(capsys, exp, data_dir, *extra):
    return cli(capsys, "decode", "--exp-dir", exp, "--data-dir", data_dir, *extra)


def holder(directory, what="decoding"):
    """Another process holding a DirLock on `directory` until killed."""
    code = ("import sys, time; from ee_asr.common.lock import DirLock; DirLock(sys.argv[1], sys.argv[2]).acquire();"
            " print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(directory), what], env=ENV, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


# --- config values: one schema, checked before any work ---------------------------------------

BAD_VALUES = [
    ("max_epoch: three", "max_epoch: expected an integer >= 1, got 'three'"),
    ("optim_conf: {lr: \"0.002\"}", "optim_conf.lr: expected a number > 0, got '0.002' (the string '0.002'"),
    ("optim_conf: {lr: 1e-3}", "YAML reads 1e-3 as a string"),
    ("grad_clip: [5.0]", "grad_clip: expected a number > 0, got [5.0] (a list: write the value without brackets)"),
    ("batch_bins: -5", "batch_bins: expected an integer >= 1, got -5"),
    ("max_epoch: yes", "max_epoch: expected an integer >= 1, got True"),
    ("accum_grad: 1.5", "accum_grad: expected an integer >= 1, got 1.5"),
    ("best_criterion: wer", "best_criterion: expected one of loss, cer, got 'wer'"),
    ("encoder_conf: {dropout_rate: 1.5}", "encoder_conf.dropout_rate: expected a number in [0, 1], got 1.5"),
    ("max_epcoh: 3", "unknown key 'max_epcoh'"),
]


@pytest.mark.parametrize("line,message", BAD_VALUES, ids=[b[0].split(":")[0] for b in BAD_VALUES])
def test_bad_config_value_is_named_before_any_work(tmp_path, line, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(line + "\n")
    with pytest.raises(UserError) as e:
        load_config(cfg)
    assert str(cfg) in str(e.value) and message in str(e.value)


def test_bad_set_value_leaves_the_experiment_intact(capsys, corpus, exp):
    before = digests(exp)
    code, _, err = cli(capsys, "train", *train_args(corpus, exp, "--set", "optim_conf.lr=fast", assets=exp.parent))
    assert code == 2 and "optim_conf.lr: expected a number > 0, got 'fast'" in err and "Traceback" not in err
    assert digests(exp) == before


# --- locks: one training per exp dir, one decoding per decode dir ------------------------------

def test_second_training_on_a_running_exp_dir_refuses(corpus, tmp_path):
    exp = tmp_path / "exp"
    args = train_args(corpus, exp, "--max-epoch", "100000")
    first = subprocess.Popen([sys.executable, "-m", "ee_asr.bin.train", *args],
                             env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (exp / "config.yaml").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert first.poll() is None, "the first training ended early"
        before = (exp / "config.yaml").read_bytes()
        second = run_py("ee_asr.bin.train", *train_args(corpus, exp, "--set", "seed=1"), check=False)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert f"{exp} is in use by training (pid {first.pid} on" in second.stderr
        assert (exp / "config.yaml").read_bytes() == before  # the second wrote nothing over the first
    finally:
        first.kill()
        first.wait()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    (tmp_path / "output").write_text("earlier output\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "start": 0,
                                                 "what": "training"}))
    with DirLock(tmp_path, "training") as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert f"taking over a stale lock of training (pid {dead.pid}" in caplog.text
    assert not (tmp_path / ".lock").exists()  # released
    assert (tmp_path / "output").read_text() == "earlier output\n"


def test_lock_of_another_host_is_not_taken(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "start": 0, "what": "training"}))
    with pytest.raises(UserError, match=r"in use by training \(pid 1 on elsewhere.*remove .*\.lock"):
        DirLock(tmp_path, "training").acquire()


def test_decoding_into_a_decode_dir_in_use_refuses(capsys, corpus, exp):
    assert decode(capsys, exp, corpus / "valid")[0] == 0
    out = exp / "decode_valid"
    before = digests(out)
    proc = holder(out)
    try:
        code, _, err = decode(capsys, exp, corpus / "valid")
        assert code == 2 and f"{out} is in use by decoding (pid {proc.pid}" in err
        assert digests(out) == before
        # another test set decodes meanwhile
        assert decode(capsys, exp, corpus / "train")[0] == 0 and (exp / "decode_train" / "exits.jsonl").is_file()
    finally:
        proc.kill()
        proc.wait()
    code, _, err = decode(capsys, exp, corpus / "valid")  # the holder died: its lock is stale
    assert code == 0 and "taking over a stale lock" in err


# --- the token model and CMVN file an experiment was trained with ------------------------------

def test_another_bpe_model_at_the_bpemodel_path_refuses(capsys, corpus, exp, tmp_path):
    assert decode(capsys, exp, corpus / "valid")[0] == 0
    before = digests(exp)
    (tmp_path / "other.txt").write_text("alpha beta gamma delta\nepsilon zeta eta theta\n")
    train_sentencepiece(tmp_path / "other.txt", tmp_path / "other", vocab_size=20, model_type="char")
    shutil.copy(tmp_path / "other.model", exp.parent / "bpe.model")  # stage 3 rerun into the same path
    code, _, err = decode(capsys, exp, corpus / "valid")
    assert code == 2 and "Traceback" not in err
    assert f"{exp.parent / 'bpe.model'} is not the token model that {exp / 'config.yaml'} was trained with" in err
    assert "restore the token model" in err and "retrain (stage 4)" in err
    with pytest.raises(UserError, match="is not the token model"):  # transcribe, export: the same loader
        load_trained(exp)
    assert digests(exp) == before


def test_changed_cmvn_file_refuses(capsys, corpus, exp):
    before = digests(exp)
    stats = dict(np.load(exp.parent / "cmvn.npz"))
    stats["sum"] = stats["sum"] * 2
    with open(exp.parent / "cmvn.npz", "wb") as f:
        np.savez(f, **stats)
    code, _, err = decode(capsys, exp, corpus / "valid")
    assert code == 2 and f"{exp.parent / 'cmvn.npz'} is not the CMVN statistics that" in err
    assert digests(exp) == before


def test_missing_token_model_is_named(capsys, corpus, exp):
    before = digests(exp)
    (exp.parent / "bpe.model").unlink()
    code, _, err = decode(capsys, exp, corpus / "valid")
    assert code == 2 and f"names the token model {exp.parent / 'bpe.model'}, which does not exist" in err
    assert digests(exp) == before


def test_experiment_without_digests_warns_once_and_decodes(capsys, corpus, exp):
    text = (exp / "config.yaml").read_text()
    (exp / "config.yaml").write_text(text[:text.index("file_sha256:")])
    code, _, err = decode(capsys, exp, corpus / "valid")
    assert code == 0 and err.count("records no digest of its token model") == 1
    assert (exp / "decode_valid" / "exits.jsonl").is_file()


def test_resume_with_another_token_model_refuses(capsys, corpus, exp, tmp_path):
    before = digests(exp)
    (tmp_path / "other.txt").write_text("one two three four five\nsix seven eight nine ten\n")
    train_sentencepiece(tmp_path / "other.txt", tmp_path / "other", vocab_size=20, model_type="char")
    shutil.copy(tmp_path / "other.model", exp.parent / "bpe.model")
    code, _, err = cli(capsys, "train", *train_args(corpus, exp, "--max-epoch", "2", assets=exp.parent))
    assert code == 2 and "holds checkpoints trained with another token model" in err
    assert digests(exp) == before


def test_corrupt_cmvn_file_fails_training_naming_it(capsys, corpus, exp):
    before = digests(exp)
    bad = exp.parent / "cmvn.npz"
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    code, _, err = cli(capsys, "train", *train_args(corpus, exp, "--max-epoch", "2", assets=exp.parent))
    assert code == 2 and f"{bad}: not a readable CMVN statistics file" in err and "Traceback" not in err
    assert digests(exp) == before


# --- checkpoints: digests, fallback to the epoch before, never a raw torch error ---------------

def test_truncated_latest_checkpoint_falls_back_to_the_previous_epoch(capsys, corpus, exp):
    assert cli(capsys, "train", *train_args(corpus, exp, "--max-epoch", "2", assets=exp.parent))[0] == 0
    ckpt = exp / "checkpoints"
    assert (ckpt / "previous.pth").is_file()
    epoch1 = digests(ckpt)["previous.pth"]
    data = (ckpt / "latest.pth").read_bytes()
    (ckpt / "latest.pth").write_bytes(data[: len(data) // 2])
    code, _, err = cli(capsys, "train", *train_args(corpus, exp, "--max-epoch", "3", assets=exp.parent))
    assert code == 0 and f"{ckpt / 'latest.pth'} is corrupt or truncated" in err
    assert f"resuming from the epoch before it, {ckpt / 'previous.pth'} (epoch 1)" in err
    history = json.loads((ckpt / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert epoch1 != digests(ckpt)["previous.pth"]  # rotated on: epoch 2's state, rewritten


def test_no_readable_training_state_is_one_clear_error(capsys, corpus, exp):
    (exp / "checkpoints" / "latest.pth").write_bytes(b"not a checkpoint")
    (exp / "checkpoints" / "latest.pth.sha256").unlink()
    before = digests(exp)
    code, _, err = cli(capsys, "train", *train_args(corpus, exp, "--max-epoch", "2", assets=exp.parent))
    assert code == 2 and "Traceback" not in err
    assert f"{exp / 'checkpoints' / 'latest.pth'} cannot be read as a checkpoint" in err
    assert "start the training again" in err
    assert digests(exp) == before


def test_truncated_model_is_named_at_decode(capsys, corpus, exp):
    assert decode(capsys, exp, corpus / "valid")[0] == 0
    data = (exp / "model.pth").read_bytes()
    (exp / "model.pth").write_bytes(data[:-1000])
    before = digests(exp)
    code, _, err = decode(capsys, exp, corpus / "valid")
    assert code == 2 and f"{exp / 'model.pth'} is corrupt or truncated" in err
    assert digests(exp) == before  # the earlier decode's outputs are kept
    (exp / "model.pth.sha256").unlink()  # no digest to compare: torch's error, in words
    code, _, err = decode(capsys, exp, corpus / "valid")
    assert code == 2 and f"{exp / 'model.pth'} cannot be read as model weights" in err and "Traceback" not in err


# --- decoding: bad utterances are skipped, named and counted ----------------------------------

def test_short_and_unreadable_utterances_are_skipped_and_counted(capsys, corpus, exp, tmp_path):
    test = make_dump(tmp_path, "test", [0.6, 0.05, 0.7, 0.6])
    scp = (test / "feats.scp").read_text().splitlines()
    scp[3] = scp[3].split()[0] + " " + str(tmp_path / "gone.ark") + ":12"  # features that cannot be read
    (test / "feats.scp").write_text("\n".join(scp) + "\n")
    assert decode(capsys, exp, corpus / "valid")[0] == 0
    before = digests(exp / "decode_valid")
    code, _, err = decode(capsys, exp, test)
    assert code == 0 and digests(exp / "decode_valid") == before
    assert "utterance 'utest01' skipped: an input of 5 frames is too short for subsampling" in err
    assert "utterance 'utest03' skipped" in err and "1 skipped" not in err and "2 skipped" in err
    out = exp / "decode_test"
    rows = [json.loads(line) for line in (out / "exits.jsonl").read_text().splitlines()]
    assert {r["utt"] for r in rows} == {"utest00", "utest02"}
    assert [line.split()[0] for line in (out / "skipped").read_text().splitlines()] == ["utest01", "utest03"]
    code, stdout, _ = cli(capsys, "score", "--exp-dir", exp, "--bootstrap", "10")
    assert code == 0 and "decode_test: 2 utterances skipped: utest01 utest03" in (exp / "RESULTS.md").read_text()


def test_a_set_of_only_bad_utterances_fails_naming_one(capsys, corpus, exp, tmp_path):
    test = make_dump(tmp_path, "short", [0.6])
    assert decode(capsys, exp, test)[0] == 0
    before = digests(exp)
    test = make_dump(tmp_path / "new", "short", [0.05, 0.06])  # the set replaced by one of clips only
    code, _, err = decode(capsys, exp, test)
    assert digests(exp) == before  # the earlier decode of the set is kept
    assert code == 2 and "every utterance failed to decode (e.g. 'ushort0" in err


# --- a full disk: the write fails naming the file, nothing half-written is left ---------------

@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root only); skipped with the reason elsewhere."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory, leave=0):
    """Fill a file system up, then free `leave` bytes."""
    with open(directory / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    if leave:
        os.truncate(directory / "filler", max(os.path.getsize(directory / "filler") - leave, 0))


def test_checkpoint_on_a_full_disk_keeps_the_old_one(small_disk):
    ckpt = small_disk / "latest.pth"
    save({"w": torch.zeros(100)}, ckpt)
    before = digests(small_disk)
    with pytest.raises(UserError, match=f"cannot write {ckpt}: No space left on device"):
        save({"w": torch.zeros(100_000)}, ckpt)  # 400 kB into 64 kB
    assert digests(small_disk) == before and sorted(p.name for p in small_disk.iterdir()) == [
        "latest.pth", "latest.pth.sha256"]
    assert CheckpointManager(small_disk.parent, 1).dir  # the manager can still be made beside it
    assert torch.load(ckpt)["w"].shape == (100,)


def test_decoding_onto_a_full_disk_fails_cleanly(capsys, corpus, exp, small_disk):
    out = exp / "decode_valid"
    out.symlink_to(small_disk, target_is_directory=True)
    assert decode(capsys, exp, corpus / "valid")[0] == 0
    before = digests(small_disk)
    fill(small_disk, leave=4096)
    code, _, err = decode(capsys, exp, corpus / "valid")
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    after = digests(small_disk)
    after.pop("filler")
    assert after == before  # the earlier outputs are whole
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(".tmp") or p.name == ".lock"]


def test_weights_digest_helper_sees_a_change(exp):
    # the digests the other cases compare are sensitive to one changed weight
    state = torch.load(exp / "model.pth")
    before = weights_digest(exp / "model.pth")
    name = next(iter(state))
    state[name] = state[name] + 1
    torch.save(state, exp / "model.pth")
    assert weights_digest(exp / "model.pth") != before
