"""Split decoding: a test set shared among jobs of whole batches and merged gives one job's bytes;
the merge names missing and doubled utterances."""

import json
import subprocess

import pytest

from conftest import clone_recipe, run_py
from ee_asr.common.errors import UserError
from ee_asr.data.batching import make_batches
from ee_asr.decode.split import job_batches, merge_exits, split_batches


def test_split_gives_whole_batches_and_every_utterance_once():
    lengths = {f"u{i:02d}": 50 + (i * 37) % 200 for i in range(40)}
    batches = make_batches(lengths, 600)
    jobs = split_batches(lengths, 600, 3)
    assert len(jobs) == 3
    assert sorted(u for j in jobs for u in j) == sorted(lengths)
    for j in jobs:  # a job's batches, formed as the full set forms them, are whole batches of the full set
        assert all(b in batches for b in job_batches(lengths, 600, set(j)))
    assert len(split_batches(lengths, 10 ** 9, 4)) == 1  # one batch: one job


def record(utt, layer):
    return json.dumps({"utt": utt, "exit": layer, "hyp": "a", "ref": "a", "ref_words": 1, "errors": 0})


def write_part(d, utts, layers=(2, 4)):
    d.mkdir(parents=True)
    (d / "exits.jsonl").write_text("".join(record(u, layer) + "\n" for layer in layers for u in utts))
    return d


def test_merge_names_missing_and_doubled_utterances(tmp_path):
    utts = ["a", "b", "c", "d"]
    p1 = write_part(tmp_path / "1", ["a", "b"])
    p2 = write_part(tmp_path / "2", ["b", "c"])
    with pytest.raises(UserError) as e:
        merge_exits([p1, p2], utts, tmp_path / "out")
    assert "1 missing (d)" in str(e.value) and "1 doubled (b)" in str(e.value) and "exit 2" in str(e.value)
    assert not (tmp_path / "out" / "exits.jsonl").exists()
    # the CLI: one line, exit 2, and a job that left nothing is named
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "utt2num_frames").write_text("".join(f"{u} 100\n" for u in utts))
    proc = run_py("ee_asr.bin.merge_decodes", "--data-dir", str(dump), "--output", str(tmp_path / "out"),
                  str(p1), str(tmp_path / "3"), check=False)
    assert proc.returncode == 2 and "did that decoding job fail" in proc.stderr and "Traceback" not in proc.stderr
    p3 = write_part(tmp_path / "4", ["c", "d"])
    run_py("ee_asr.bin.merge_decodes", "--data-dir", str(dump), "--output", str(tmp_path / "out"), str(p3), str(p1))
    rows = [json.loads(line) for line in (tmp_path / "out" / "exits.jsonl").read_text().splitlines()]
    assert [(r["exit"], r["utt"]) for r in rows] == [(L, u) for L in (2, 4) for u in utts]
    assert (tmp_path / "out" / "exit4" / "text").read_text() == "a a\nb a\nc a\nd a\n"


def stage5(recipe, *args):
    return subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", "--nbpe", "100", "--stage", "5",
                           "--stop-stage", "5", "--decode-batch-bins", "1500", "--policy-grid", "entropy:0.1",
                           *args], cwd=recipe, capture_output=True, text=True, timeout=600)


def without_seconds(path):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_recipe_decode_nj_2_equals_one_job(tiny_trained_recipe, tmp_path):
    recipe = clone_recipe(tiny_trained_recipe, tmp_path / "recipe")
    decoded = recipe / "exp" / "conformer_ctc_ee_unigram100" / "decode_test"
    proc = stage5(recipe, "--decode-nj", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = (decoded / "exits.jsonl").read_bytes()
    one_policy = without_seconds(decoded / "policy_entropy" / "thr_0.1" / "results.jsonl")
    one_summary = json.loads((decoded / "policy_entropy" / "thr_0.1" / "summary.json").read_text())
    (recipe / "exp" / "conformer_ctc_ee_unigram100" / ".stage5.done").unlink()
    proc = stage5(recipe, "--decode-nj", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test: 2 decoding jobs merged" in proc.stderr
    assert sorted(p.name for p in (decoded / "log").iterdir()) == ["decode.1.log", "decode.2.log",
                                                                   "policy.1.log", "policy.2.log"]
    assert (decoded / "exits.jsonl").read_bytes() == one
    assert len(one.splitlines()) == 2 * 20  # 20 test utterances at exits 2 and 4
    assert without_seconds(decoded / "policy_entropy" / "thr_0.1" / "results.jsonl") == one_policy
    summary = json.loads((decoded / "policy_entropy" / "thr_0.1" / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k != "seconds"} == {k: v for k, v in one_summary.items()
                                                                    if k != "seconds"}
    assert not (decoded / "split").exists()
