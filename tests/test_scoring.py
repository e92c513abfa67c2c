import json

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
