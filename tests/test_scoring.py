import json

from conftest import run_py
from ee_asr.common.edit_ops import char_counts, word_counts
from ee_asr.score.tables import exit_tables


def rec(utt, exit_, ref, hyp):
    w, c = word_counts(ref, hyp), char_counts(ref, hyp)
    return {"utt": utt, "exit": exit_, "ref": ref, "hyp": hyp, "ref_words": len(ref.split()),
            "errors": w["sub"] + w["del"] + w["ins"], "sub": w["sub"], "del": w["del"], "ins": w["ins"],
            "ref_chars": len(ref), "char_errors": sum(c[k] for k in ("sub", "del", "ins")),
            "char_sub": c["sub"], "char_del": c["del"], "char_ins": c["ins"]}


def test_word_counts():
    assert word_counts("a b c d", "a x c d e") == {"hits": 3, "sub": 1, "del": 0, "ins": 1}
    assert word_counts("a b", "") == {"hits": 0, "sub": 0, "del": 2, "ins": 0}


def test_espnet_table_rows(tmp_path):
    d = tmp_path / "decode_test"
    d.mkdir()
    rows = [rec("u1", 2, "a b c d", "a x c"), rec("u2", 2, "e f", "e f"),
            rec("u1", 4, "a b c d", "a b c d"), rec("u2", 4, "e f", "e f g")]
    (d / "exits.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text, summary = exit_tables([d])
    # exit 2: 6 words, 1 sub + 1 del -> Corr 4/6, Err 2/6, one of two sentences wrong
    assert "|decode_test/exit2|2|6|66.7|16.7|16.7|0.0|33.3|50.0|" in text
    assert "|decode_test/exit4|2|6|100.0|0.0|0.0|16.7|16.7|50.0|" in text
    assert summary == {"decode_test/wer_exit2": 33.33, "decode_test/wer_exit4": 16.67}


def fake_experiment(root, recipe, tag, wers, exits, weighting="equal"):
    import yaml
    exp = root / recipe / "exp" / tag
    exp.mkdir(parents=True)
    (exp / "results.json").write_text(json.dumps({f"decode_test/wer_exit{L}": w for L, w in zip(exits, wers)}))
    (exp / "config.yaml").write_text(yaml.safe_dump({"encoder_conf": {"exit_layers": exits},
                                                      "model_conf": {"exit_weighting": weighting}}))
    return exp


def test_compare_puts_experiments_in_rows_and_subtracts_the_single_exit_baseline(tmp_path):
    ee = fake_experiment(tmp_path, "conformer_ctc_ee", "train", [60.0, 50.0, 45.0], [2, 4, 6])
    s2 = fake_experiment(tmp_path, "conformer_ctc_single", "single_exit2", [58.0], [2])
    s6 = fake_experiment(tmp_path, "conformer_ctc_single", "single_exit6", [90.0, 80.0, 44.0], [2, 4, 6], [0, 0, 1])
    out = run_py("ee_asr.bin.compare", str(ee), str(s2), str(s6), "--output", str(tmp_path / "cmp.md")).stdout
    assert "|conformer_ctc_ee/train|early-exit|60.0|50.0|45.0|" in out
    assert "|conformer_ctc_single/single_exit6|single-exit|90.0|80.0|44.0|" in out
    assert "|single-exit baseline (last exit of each)|single-exit|58.0|-|44.0|" in out
    assert "|conformer_ctc_ee/train minus single-exit|difference|+2.0|-|+1.0|" in out
    assert (tmp_path / "cmp.md").read_text().strip() == out.strip()
    missing = run_py("ee_asr.bin.compare", str(tmp_path / "nope"), check=False)
    assert missing.returncode != 0 and "no results.json" in missing.stderr


def write_exit_records(exp, errors_per_exit, words=5):
    """decode_test/exits.jsonl: errors_per_exit {layer: [errors per utterance]}."""
    lines = [json.dumps({"utt": f"u{i:03d}", "exit": layer, "errors": e, "ref_words": words})
             for layer, errs in errors_per_exit.items() for i, e in enumerate(errs)]
    (exp / "decode_test").mkdir()
    (exp / "decode_test" / "exits.jsonl").write_text("\n".join(lines) + "\n")


def test_compare_differences_carry_paired_intervals_and_bold_only_what_excludes_zero(tmp_path):
    n = 200
    better = [0] * n                      # no errors on any utterance
    worse = [1 if i % 2 else 0 for i in range(n)]   # an error on half of them
    noisy = [1 if i % 2 == 0 else 0 for i in range(n)]  # as many errors, on the other half
    ref = fake_experiment(tmp_path, "a", "ref", [10.0, 10.0], [2, 4])
    write_exit_records(ref, {2: worse, 4: worse})
    other = fake_experiment(tmp_path, "b", "other", [0.0, 10.0], [2, 4])
    write_exit_records(other, {2: better, 4: noisy})
    out = run_py("ee_asr.bin.compare", str(other), "--reference", str(ref)).stdout
    row = next(line for line in out.splitlines() if line.startswith("|b/other minus a/ref|"))
    cells = row.split("|")[3:5]
    assert cells[0].startswith("**-10.0**") and "(-" in cells[0]   # every draw lower: significant
    assert not cells[1].startswith("**") and cells[1].startswith("+0.0 (-")  # same count, other utterances
    lo, hi = (float(x) for x in cells[1].split("(")[1].rstrip(")").split(" .. "))
    assert lo < 0 < hi
    broken = tmp_path / "a" / "exp" / "ref" / "decode_test" / "exits.jsonl"
    broken.write_text('{"utt": "u1"}\n')
    bad = run_py("ee_asr.bin.compare", str(other), "--reference", str(ref), check=False)
    assert bad.returncode != 0 and "exits.jsonl:1" in bad.stderr
