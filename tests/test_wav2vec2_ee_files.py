"""The paper authors' per-utterance result files (wav2vec2-ee) read as exit records and scored."""

import json
import math

import pytest

from conftest import SHARED, run_py
from ee_asr.common.errors import DataError, UserError
from ee_asr.score.wav2vec2_ee_files import parse_sets, read_records

PAPER = SHARED / "data" / "paper_w2v_ee_scores"

# per exit: three utterances' (greedy sub, del, ins), beam errors, their entropy score, N-best posterior
WORDS = (4, 10, 5)
EXITS = {
    2: {"greedy": [(1, 1, 0), (3, 0, 1), (0, 0, 0)], "beam": [1, 3, 0],
        "entropy": [-0.004, -0.008, -0.001], "posterior": [0.5, 0.1, 0.9]},
    4: {"greedy": [(0, 0, 0), (1, 0, 0), (0, 1, 0)], "beam": [0, 2, 1],
        "entropy": [-0.001, -0.003, -0.002], "posterior": [0.95, 0.4, 0.7]},
}


def write_results_dir(d, exits=EXITS):
    d.mkdir(parents=True, exist_ok=True)
    for layer, e in exits.items():
        greedy, beam, ent = [], [], []
        for n, (sub, dele, ins) in enumerate(e["greedy"]):
            w = WORDS[n]
            greedy.append(f"expect_len: {w} pred_len: {w - dele + ins} hit: {w - sub - dele} sub: {sub} "
                          f"ins: {ins} del: {dele} wer: {(sub + dele + ins) / w}")
            beam.append(f"expect_len: {w} pred_len: {w} hits: {w - e['beam'][n]} errors: {e['beam'][n]} "
                        f"wer: {e['beam'][n] / w}")
            ent.append(f"{e['entropy'][n]} {(sub + dele + ins) / w}")
        (d / f"entropy_wer_wer_{layer}.txt").write_text("\n".join(greedy) + "\n")
        (d / f"posterior_wer_wer_{layer}.txt").write_text("\n".join(beam) + "\n")
        (d / f"entropy_wer_entropy_{layer}.txt").write_text("\n".join(ent) + "\n")
        (d / f"posterior_wer_posterior_{layer}.txt").write_text("\n".join(map(str, e["posterior"])) + "\n")
    return d


def test_records_of_both_decoders_split_into_sets(tmp_path):
    d = write_results_dir(tmp_path / "epoch_40")
    sets = parse_sets(["a=1-2", "b=3-3"])
    greedy = read_records(d, "greedy", sets, vocab_size=32)
    beam = read_records(d, "lm_beam", sets, vocab_size=32)
    assert [r["utt"] for r in greedy["a"] if r["exit"] == 2] == ["a-00001", "a-00002"]
    assert [r["utt"] for r in greedy["b"]] == ["b-00003", "b-00003"]
    r = next(r for r in greedy["a"] if r["exit"] == 2 and r["utt"] == "a-00002")
    assert (r["ref_words"], r["errors"], r["sub"], r["del"], r["ins"]) == (10, 4, 3, 0, 1)
    assert "nbest_posterior" not in r
    # their -H/V becomes our H/log V
    assert r["entropy"] == pytest.approx(0.008 * 32 / math.log(32))
    b = next(r for r in beam["b"] if r["exit"] == 4)
    assert (b["ref_words"], b["errors"], b["nbest_posterior"]) == (5, 1, 0.7)
    assert b["entropy"] == pytest.approx(0.002 * 32 / math.log(32))


def test_bad_files_are_named_with_their_line(tmp_path):
    d = write_results_dir(tmp_path / "r")
    sets = parse_sets(["a=1-3"])
    f = d / "entropy_wer_wer_4.txt"
    lines = f.read_text().splitlines()
    f.write_text("\n".join([lines[0], lines[1].replace("wer: 0.1", "wer: 0.2"), lines[2]]) + "\n")
    with pytest.raises(DataError, match=r"entropy_wer_wer_4.txt:2: wer 0.2 is not errors / expect_len"):
        read_records(d, "greedy", sets, 32)
    f.write_text("\n".join([lines[0], lines[1], "expect_len: 5 hit: 4"]) + "\n")
    with pytest.raises(DataError, match=r"entropy_wer_wer_4.txt:3: no 'sub' field"):
        read_records(d, "greedy", sets, 32)
    f.write_text("\n".join(lines[:2]) + "\n")
    with pytest.raises(DataError, match=r"entropy_wer_wer_4.txt: 2 lines, but .* has 3"):
        read_records(d, "greedy", sets, 32)
    f.write_text("\n".join(lines) + "\n")
    (d / "posterior_wer_posterior_2.txt").write_text("0.5\nnan\n0.9\n")
    with pytest.raises(DataError, match=r"posterior_wer_posterior_2.txt:2: score nan is not finite"):
        read_records(d, "lm_beam", sets, 32)
    (d / "posterior_wer_posterior_2.txt").unlink()
    with pytest.raises(DataError, match=r"posterior_wer_posterior_2.txt: missing"):
        read_records(d, "lm_beam", sets, 32)
    with pytest.raises(UserError, match=r"--sets: a ends at line 4, but the files have 3 lines"):
        read_records(d, "greedy", parse_sets(["a=1-4"]), 32)
    for bad in ("a=3-1", "a=0-2", "a", "a=1..2"):
        with pytest.raises(UserError, match="NAME=FIRST-LAST"):
            parse_sets([bad])
    with pytest.raises(DataError, match="not a wav2vec2-ee results dir"):
        read_records(tmp_path, "greedy", sets, 32)


def test_cli_writes_decode_dirs_and_results(tmp_path):
    d = write_results_dir(tmp_path / "r")
    exp = tmp_path / "exp"
    proc = run_py("ee_asr.bin.score_wav2vec2_ee", str(d), "--exp-dir", str(exp), "--sets", "all=1-3",
                  "--bootstrap", "50")
    text = (exp / "RESULTS.md").read_text()
    assert text in proc.stdout
    # greedy: exit 2 has 2 + 4 + 0 errors over 19 words (2 sentences wrong), exit 4 has 0 + 1 + 1;
    # the beam's records carry only error totals (4 and 3), so no Corr/Sub/Del/Ins and no CER table
    assert f"|decode_all/exit2|3|19|{100 * 14 / 19:.1f}|{100 * 4 / 19:.1f}|{100 * 1 / 19:.1f}|" in text
    assert f"|decode_all/exit4|3|19|{100 * 17 / 19:.1f}|" in text and f"|{100 * 2 / 19:.1f}|66.7|" in text
    assert f"|decode_all_lm/exit2|3|19|-|-|-|-|{100 * 4 / 19:.1f}|66.7|" in text
    assert "### CER" not in text
    assert json.loads((exp / "results.json").read_text()) == {
        "decode_all/wer_exit2": round(100 * 6 / 19, 2), "decode_all/wer_exit4": round(100 * 2 / 19, 2),
        "decode_all_lm/wer_exit2": round(100 * 4 / 19, 2), "decode_all_lm/wer_exit4": round(100 * 3 / 19, 2)}
    for decode in ("decode_all", "decode_all_lm"):
        records = [json.loads(line) for line in (exp / decode / "exits.jsonl").read_text().splitlines()]
        assert len(records) == 6 and (exp / f"tradeoff_{decode}.png").is_file()
        assert f"### Exit selection: {decode}" in text
    assert "- `entropy`:" in text and "- `nbest`:" in text and "nbest vs entropy" in text
    bad = run_py("ee_asr.bin.score_wav2vec2_ee", str(d), "--exp-dir", str(exp), "--sets", "all=1-9", check=False)
    assert bad.returncode == 2 and "ends at line 9, but the files have 3 lines" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.skipif(not PAPER.is_dir(), reason=f"{PAPER} (the paper authors' per-utterance results) is not here")
def test_the_paper_authors_files():
    sets = parse_sets(["test_clean=1-2620", "test_other=2621-5559"])
    for decoder in ("greedy", "lm_beam"):
        records = read_records(PAPER, decoder, sets, 32)
        for name, utts in (("test_clean", 2620), ("test_other", 2939)):
            assert len(records[name]) == 6 * utts
            assert sorted({r["exit"] for r in records[name]}) == [2, 4, 6, 8, 10, 12]
            assert all(r["entropy"] >= 0 for r in records[name])
            if decoder == "lm_beam":
                assert all(0 <= r["nbest_posterior"] <= 1 for r in records[name])
