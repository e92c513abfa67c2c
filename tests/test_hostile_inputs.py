"""Hostile inputs, generated: malformed data dirs, audio files, ARPA LMs and CLI values. Every case
must end in a named error (a UserError naming the file, or exit 2 with one `ERROR:` line naming
it) or a correct result; never a traceback, never a silent change. At least 200 cases per reader
and per CLI (issue 30, item 7)."""

import contextlib
import gzip
import io
import itertools
import json
import logging
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ee_asr.bin.build_lm import main as build_lm_main
from ee_asr.bin.compute_features import main as compute_features_main
from ee_asr.bin.train_bpe import main as train_bpe_main
from ee_asr.bin.validate_data_dir import main as validate_main
from ee_asr.common.cli import run_main
from ee_asr.common.errors import DataError, UserError
from ee_asr.data.arpa import load_kenlm, read_arpa
from ee_asr.data.audio import check_audio_readable, read_audio
from ee_asr.data.datadir import read_table
from ee_asr.data.ngram_lm import build_arpa

N = 200
SETTINGS = settings(max_examples=N, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_fresh = itertools.count()

# what a Kaldi line may not hold: the separators, every other control but tab, the BOM
HOSTILE = ["\r", "\r\n", "\u2028", "\u2029", "\x85", "\x00", "\x0b", "\x0c", "\x1c", "\x1e", "\x7f", "\ufeff",
           "\x1b[31m"]
# what it may: still one line, split at spaces and tabs only
HARMLESS = [" ", "\t", "  \t ", "\u00a0", "\u3000", "é", "漢", "'", "-", "x y"]
CHUNKS = st.one_of(st.sampled_from(HOSTILE + HARMLESS + ["\n", "\n\n", ""]), st.text(max_size=4))


def fresh_dir(root):
    d = Path(root) / f"case{next(_fresh)}"
    d.mkdir()
    return d


def run_cli(main, argv):
    """(exit code, stderr) of a CLI run in-process as `python -m` runs it; any other exception
    escapes, and fails the test with its traceback."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            run_main(main, [str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code
    for handler in logging.getLogger().handlers[:]:  # setup_logging bound one to the redirected stderr
        logging.getLogger().removeHandler(handler)
    return code, err.getvalue()


def assert_named_error(code, err, *names):
    """Exit 2 with one ERROR line naming one of `names`, or argparse's own usage error."""
    assert code == 2, err
    event("refused")
    if "error: argument" in err:
        return
    errors = [line for line in err.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, err
    assert any(str(n) in errors[0] for n in names), err


def forbidden(text):
    """The reference line model, independent of common/lines.py: what Kaldi would not read as one
    line of one record."""
    return [c for c in text if c != "\n" and c != "\t" and (unicodedata.category(c) in ("Cc", "Zl", "Zp")
                                                            or c == "\ufeff")]


# ---- data dirs -------------------------------------------------------------------------------------

FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "segments")


@st.composite
def data_dirs(draw):
    """{file: bytes} of a valid data dir (segments maybe), then 1-3 hostile edits."""
    n_spk = draw(st.integers(1, 3))
    utts = sorted({f"spk{s}-u{i}": f"spk{s}" for s in range(n_spk) for i in range(draw(st.integers(1, 3)))}.items())
    words = st.lists(st.sampled_from(["hello", "world", "good", "morning", "café", "漢字"]), min_size=1, max_size=4)
    files = {"text": "".join(f"{u} {' '.join(draw(words))}\n" for u, _ in utts),
             "utt2spk": "".join(f"{u} {s}\n" for u, s in utts),
             "spk2utt": "".join(f"{s} {' '.join(u for u, t in utts if t == s)}\n"
                                for s in sorted({s for _, s in utts}))}
    if draw(st.booleans()):
        files["wav.scp"] = "".join(f"{u}-reco /audio/{u}.wav\n" for u, _ in utts)
        files["segments"] = "".join(f"{u} {u}-reco 0.0 {draw(st.sampled_from(['1.0', '0.5']))}\n" for u, _ in utts)
    else:
        files["wav.scp"] = "".join(f"{u} /audio/{u}.wav\n" for u, _ in utts)
    data = {k: v.encode() for k, v in files.items()}
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(data)))
        b = data[name]
        at = draw(st.integers(0, len(b)))
        kind = draw(st.sampled_from(["insert", "insert", "insert", "bytes", "truncate", "drop_line", "dup_line",
                                     "swap_lines", "remove", "empty", "gzip"]))
        lines = b.split(b"\n")
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        if kind == "insert":
            data[name] = b[:at] + draw(CHUNKS).encode("utf-8", "surrogatepass") + b[at:]
        elif kind == "bytes":
            data[name] = b[:at] + draw(st.binary(min_size=1, max_size=3)) + b[at:]
        elif kind == "truncate":
            data[name] = b[:at]
        elif kind == "drop_line":
            data[name] = b"\n".join(lines[:i] + lines[i + 1:])
        elif kind == "dup_line":
            data[name] = b"\n".join(lines[:i] + [lines[i]] + lines[i:])
        elif kind == "swap_lines":
            lines[i], lines[j] = lines[j], lines[i]
            data[name] = b"\n".join(lines)
        elif kind == "remove":
            del data[name]
        elif kind == "empty":
            data[name] = b""
        else:
            data[name] = gzip.compress(b)
    return data


@SETTINGS
@given(files=data_dirs())
def test_validate_data_dir_names_the_file_or_accepts_what_kaldi_reads(tmp_path, files):
    d = fresh_dir(tmp_path)
    for name, b in files.items():
        (d / name).write_bytes(b)
    code, err = run_cli(validate_main, [d, "--no-audio"])
    if code != 0:
        assert_named_error(code, err, *(d / f for f in FILES), d)
        return
    # accepted: every file is UTF-8 that Kaldi reads line by line as ee-asr did, nothing was split elsewhere
    for name, b in files.items():
        text = b.decode("utf-8")
        assert not forbidden(text), (name, text)
        lines = text.split("\n")
        lines = lines[:-1] if lines[-1] == "" else lines
        rows = read_table(d / name)
        assert [k for k, _, _ in rows] == [re.split("[ \t]+", ln.strip(" \t"))[0] for ln in lines]


@SETTINGS
@given(sep=st.sampled_from(HOSTILE), words=st.lists(st.sampled_from(["fake-utt", "hello", "x"]), min_size=1,
                                                    max_size=3), line=st.integers(1, 3))
def test_a_separator_inside_a_transcript_never_makes_a_fake_utterance(tmp_path, sep, words, line):
    d = fresh_dir(tmp_path)
    rows = [f"u{i} hello world" for i in range(1, 4)]
    rows[line - 1] += f"{sep}{' '.join(words)}"
    (d / "text").write_text("\n".join(rows) + "\n", encoding="utf-8", newline="")
    with pytest.raises(DataError) as e:
        read_table(d / "text")
    assert f"text:{line}:" in str(e.value)
    assert re.search(r"U\+[0-9A-F]{4}", str(e.value))


# ---- audio -----------------------------------------------------------------------------------------

@st.composite
def audio_files(draw):
    """(bytes, sample rate, channels, frames, how it was made): a sound file, maybe damaged."""
    sr = draw(st.sampled_from([8000, 11025, 16000, 16000, 22050, 44100]))
    channels = draw(st.integers(1, 3))
    frames = draw(st.sampled_from([0, 1, 200, 1600, 4000]))
    fmt, subtype = draw(st.sampled_from([("WAV", "PCM_16"), ("WAV", "FLOAT"), ("WAV", "PCM_U8"), ("FLAC", "PCM_16")]))
    how = draw(st.sampled_from(["clean", "clean", "cancel", "silent", "nan", "damaged", "damaged", "garbage"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    wave = (0.3 * rng.standard_normal((frames, channels))).astype(np.float32)
    if how == "cancel" and channels > 1:
        wave[:, 1] = -wave[:, 0]
        wave[:, 2:] = 0.0
    if how == "silent":
        wave[:] = 0.0
    if how == "nan" and frames:
        fmt, subtype = "WAV", "FLOAT"  # the only one of these that stores a NaN
        wave[frames // 2] = np.nan
    buf = io.BytesIO()
    soundfile.write(buf, wave, sr, format=fmt, subtype=subtype)
    b = buf.getvalue()
    if how == "damaged":
        at = draw(st.integers(0, len(b)))
        b = draw(st.sampled_from([b[:at], b[:at] + draw(st.binary(min_size=1, max_size=8)) + b[at + 8:]]))
    if how == "garbage":
        b = draw(st.binary(max_size=64))
    return b, sr, channels, frames, how, fmt, subtype


@SETTINGS
@given(audio=audio_files())
def test_read_audio_names_the_file_or_returns_16khz_mono(tmp_path, caplog, audio):
    b, sr, channels, frames, how, fmt, subtype = audio
    path = fresh_dir(tmp_path) / f"a.{fmt.lower()}"
    path.write_bytes(b)
    problem = check_audio_readable(str(path))
    assert problem is None or str(path) in problem
    caplog.clear()
    try:
        wave = read_audio(str(path))
    except UserError as e:
        assert str(path) in str(e)
        assert how != "clean" or frames == 0, e  # a clean file with samples reads
        return
    # read though cancelling: one channel, under 10 ms (not judged), or 8-bit quantisation leaves more
    # than -40 dB of the signal
    assert how in ("clean", "silent", "damaged") or (
        how == "cancel" and (channels == 1 or frames < sr // 100 or subtype == "PCM_U8")), how
    assert wave.dtype == np.float32 and wave.ndim == 1 and wave.size > 0 and np.isfinite(wave).all()
    if how in ("clean", "silent"):
        assert abs(len(wave) - frames * 16000 / sr) <= 2
        assert (sr != 16000) == any(str(path) in r.getMessage() and "Hz" in r.getMessage() for r in caplog.records)
        assert (problem is not None) == (sr != 16000)  # the validator refuses another rate


def test_cancelling_channels_are_refused_and_one_channel_reads(tmp_path):
    wave = 0.3 * np.random.default_rng(0).standard_normal(8000)
    soundfile.write(tmp_path / "x.wav", np.stack([wave, -wave], 1).astype(np.float32), 16000)
    with pytest.raises(UserError, match=r"x.wav' cancel when mixed"):
        read_audio(str(tmp_path / "x.wav"))
    soundfile.write(tmp_path / "y.wav", np.stack([wave, 0.5 * wave], 1).astype(np.float32), 16000, subtype="FLOAT")
    assert np.allclose(read_audio(str(tmp_path / "y.wav")), 0.75 * wave, atol=1e-6)
    # int16 values written as floats: refused, not turned into features 90 dB too loud
    soundfile.write(tmp_path / "z.wav", (32767 * wave).astype(np.float32), 16000, subtype="FLOAT")
    with pytest.raises(UserError, match=r"z.wav' holds samples up to .* integer values stored as floats"):
        read_audio(str(tmp_path / "z.wav"))


def test_an_undecodable_file_gives_the_library_reason_not_does_not_exist(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk")
    with pytest.raises(UserError) as e:
        read_audio(str(tmp_path / "x.wav"))
    assert "does not exist" not in str(e.value) and "cannot decode" in str(e.value)
    assert "No 'data' chunk marker" in check_audio_readable(str(tmp_path / "x.wav"))  # libsndfile's words
    with pytest.raises(UserError, match="is a directory"):
        read_audio(str(tmp_path))


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(audio=audio_files(), segments=st.one_of(st.none(), st.lists(
    st.tuples(st.sampled_from(["0", "0.01", "0.1", "-1", "nan", "inf", "x", "0.2"]),
              st.sampled_from(["0.05", "0.1", "0.25", "1e9", "nan", "0", "y", "0.3"]),
              st.sampled_from(["r1", "r1", "r2"])), min_size=1, max_size=3)),
       feats_type=st.sampled_from(["fbank", "raw", "mfcc"]), bins=st.sampled_from(["80", "23", "0", "-3", "999", "x"]))
def test_compute_features_names_the_file_or_writes_every_utterance(tmp_path, audio, segments, feats_type, bins):
    b, sr, channels, frames, how, fmt, subtype = audio
    d = fresh_dir(tmp_path)
    (d / "r1.wav").write_bytes(b)
    (d / "wav.scp").write_text(f"r1 {d / 'r1.wav'}\n")
    argv = ["--wav-scp", d / "wav.scp", "--out-prefix", d / "out" / "feats", "--feats-type", feats_type,
            "--num-mel-bins", bins]
    utts = ["r1"]
    if segments is not None:
        utts = [f"u{i}" for i in range(len(segments))]
        (d / "segments").write_text("".join(f"u{i} {r} {s} {e}\n" for i, (s, e, r) in enumerate(segments)))
        argv += ["--segments", d / "segments"]
    code, err = run_cli(compute_features_main, argv)
    if code != 0:
        assert_named_error(code, err, d / "wav.scp", d / "segments", d / "r1.wav", f"{bins} mel bins")
        return
    lengths = dict(line.split() for line in (d / "out" / "feats.num_frames").read_text().splitlines())
    assert sorted(lengths) == utts and all(int(n) > 0 for n in lengths.values())


# ---- ARPA LMs --------------------------------------------------------------------------------------

SENTENCES = [s.split() for s in ["hello world", "good morning world", "hello good morning", "a small lm"]]


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    root = tmp_path_factory.mktemp("arpa")
    build_arpa(SENTENCES, 3, root / "lm.arpa")
    build_arpa(SENTENCES, 1, root / "uni.arpa")
    return {"trigram": (root / "lm.arpa").read_bytes(), "unigram": (root / "uni.arpa").read_bytes()}


def word_dict():
    from flashlight.lib.text.dictionary import create_word_dict

    return create_word_dict({w: [[]] for w in ["hello", "world", "good", "morning", "<unk>"]})


@SETTINGS
@given(data=st.data())
def test_an_arpa_lm_loads_or_is_named(tmp_path, arpa, data):
    pytest.importorskip("flashlight.lib.text.decoder.kenlm")
    base = data.draw(st.sampled_from(["trigram", "trigram", "unigram"]))
    b = arpa[base]
    kind = data.draw(st.sampled_from(["none", "gzip", "insert", "insert", "bytes", "truncate", "drop_line",
                                      "count", "kenlm_binary", "gzip_truncated"]))
    lines = b.split(b"\n")
    i = data.draw(st.integers(0, len(lines) - 1))
    at = data.draw(st.integers(0, len(b)))
    if kind == "gzip":
        b = gzip.compress(b)
    elif kind == "insert":
        b = b[:at] + data.draw(CHUNKS).encode("utf-8", "surrogatepass") + b[at:]
    elif kind == "bytes":
        b = b[:at] + data.draw(st.binary(min_size=1, max_size=4)) + b[at:]
    elif kind == "truncate":
        b = b[:at]
    elif kind == "drop_line":
        b = b"\n".join(lines[:i] + lines[i + 1:])
    elif kind == "count":
        b = re.sub(rb"ngram 2=\d+", b"ngram 2=%d" % data.draw(st.integers(0, 99)), b)
    elif kind == "kenlm_binary":
        b = b"mmap lm http://kheafield.com/code" + b[:at]
    elif kind == "gzip_truncated":
        z = gzip.compress(b)
        b = z[:data.draw(st.integers(0, len(z) - 1))]
    path = fresh_dir(tmp_path) / "lm.arpa"
    path.write_bytes(b)
    try:
        counts, words = read_arpa(path)
        load_kenlm(path, word_dict())
    except DataError as e:
        assert str(path) in str(e)
        assert kind not in ("none", "gzip") or base == "unigram", e  # a plain or gzipped trigram LM loads
        return
    assert len(counts) >= 2 and "hello" in words
    assert kind != "kenlm_binary" and base != "unigram"


def test_unigram_gzipped_and_garbled_lms_are_named(tmp_path, arpa):
    (tmp_path / "uni.arpa").write_bytes(arpa["unigram"])
    with pytest.raises(DataError, match="uni.arpa:.*unigram LM"):
        read_arpa(tmp_path / "uni.arpa")
    (tmp_path / "lm.arpa.gz").write_bytes(gzip.compress(arpa["trigram"]))
    assert read_arpa(tmp_path / "lm.arpa.gz")[0] == read_arpa_bytes(tmp_path, arpa["trigram"])[0]
    (tmp_path / "bad.arpa").write_bytes(re.sub(rb"ngram 3=\d+", b"ngram 3=999", arpa["trigram"]))
    pytest.importorskip("flashlight.lib.text.decoder.kenlm")
    with pytest.raises(DataError, match="bad.arpa: KenLM cannot load it"):
        load_kenlm(tmp_path / "bad.arpa", word_dict())


def read_arpa_bytes(tmp_path, b):
    (tmp_path / "plain.arpa").write_bytes(b)
    return read_arpa(tmp_path / "plain.arpa")


# ---- CLIs over text: build_lm, train_bpe ------------------------------------------------------------

@SETTINGS
@given(files=data_dirs(), order=st.one_of(st.integers(-1, 5), st.sampled_from(["x", "", "2.5", "1e3"])),
       text_format=st.sampled_from(["kaldi", "plain", "csv"]), out=st.sampled_from(["lm.arpa", "new/lm.arpa",
                                                                                    "text/lm.arpa"]))
def test_build_lm_names_the_file_or_writes_a_loadable_lm(tmp_path, files, order, text_format, out):
    d = fresh_dir(tmp_path)
    text = d / "text"
    if "text" in files:
        text.write_bytes(files["text"])
    code, err = run_cli(build_lm_main, ["--text", text, "--order", order, "--text-format", text_format,
                                        "--output", d / out])
    if code != 0:
        assert_named_error(code, err, text, d / out, d / "text", "order")
        return
    if int(order) >= 2:
        counts, words = read_arpa(d / out)
        assert len(counts) == int(order) and words
    else:  # written, and refused by the decoder, which names it (test_unigram_gzipped_and_garbled_lms_are_named)
        assert (d / out).read_bytes().startswith(b"\\data\\\n")
    assert not forbidden(files["text"].decode("utf-8"))


@SETTINGS
@given(files=data_dirs(), vocab=st.sampled_from(["-1", "0", "1", "5", "20", "50000", "x"]),
       model_type=st.sampled_from(["unigram", "bpe", "char", "word"]))
def test_train_bpe_names_the_file_or_writes_a_model(tmp_path, files, vocab, model_type):
    d = fresh_dir(tmp_path)
    if "text" in files:
        (d / "text").write_bytes(files["text"])
    code, err = run_cli(train_bpe_main, ["--text", d / "text", "--model-prefix", d / "bpe" / "m",
                                         "--vocab-size", vocab, "--model-type", model_type])
    if code != 0:
        assert_named_error(code, err, d / "text", d / "bpe", "vocab")
        return
    assert (d / "bpe" / "m.model").is_file()
    assert not forbidden(files["text"].decode("utf-8"))


# ---- the offline sweep over a scores file ------------------------------------------------------------

FIELD_VALUES = st.one_of(st.integers(-3, 30), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                         st.none(), st.text(max_size=3), st.lists(st.integers(0, 2), max_size=2))


@st.composite
def scores_files(draw):
    """Bytes of an exits.jsonl (every utterance at exits 2 and 4, with scores), maybe damaged."""
    records = []
    for u in range(draw(st.integers(1, 4))):
        for layer in (2, 4):
            records.append({"utt": f"u{u}", "exit": layer, "ref_words": 5, "errors": draw(st.integers(0, 6)),
                            "entropy": draw(st.floats(0, 3)), "maxprob": draw(st.floats(0, 1)),
                            "seq_posterior": draw(st.floats(0, 1)), "disagreement": draw(st.floats(0, 1)),
                            "nbest_posterior": draw(st.floats(0, 1))})
    kind = draw(st.sampled_from(["none", "field", "field", "drop_field", "insert", "bytes", "truncate", "dup_line",
                                 "drop_line"]))
    if kind == "field":
        r = draw(st.sampled_from(records))
        r[draw(st.sampled_from(sorted(r)))] = draw(FIELD_VALUES)
    elif kind == "drop_field":
        r = draw(st.sampled_from(records))
        del r[draw(st.sampled_from(sorted(r)))]
    lines = [json.dumps(r).encode() for r in records]
    if kind == "dup_line":
        lines.append(lines[draw(st.integers(0, len(lines) - 1))])
    elif kind == "drop_line":
        del lines[draw(st.integers(0, len(lines) - 1))]
    b = b"".join(line + b"\n" for line in lines)
    at = draw(st.integers(0, len(b)))
    if kind == "insert":
        b = b[:at] + draw(CHUNKS).encode("utf-8", "surrogatepass") + b[at:]
    elif kind == "bytes":
        b = b[:at] + draw(st.binary(min_size=1, max_size=3)) + b[at:]
    elif kind == "truncate":
        b = b[:at]
    return b


@SETTINGS
@given(scores=scores_files(), policy=st.sampled_from(["entropy", "maxprob", "seqpost", "agree", "nbest", "fixed",
                                                       "oracle", "budget", "learned", "nonsense"]),
       thresholds=st.lists(st.sampled_from(["0.1", "0.5", "2", "4", "-1", "nan", "inf", "x"]), max_size=3),
       max_layers=st.sampled_from([None, "2", "4", "3", "0", "-1", "x"]))
def test_sweep_names_the_file_or_writes_its_table(tmp_path, scores, policy, thresholds, max_layers):
    from ee_asr.bin.sweep import main as sweep_main

    d = fresh_dir(tmp_path)
    (d / "exits.jsonl").write_bytes(scores)
    argv = [d / "exits.jsonl", "--policy", policy, "--output", d / "out" / "sweep"]
    argv += ["--threshold", *thresholds] if thresholds else []
    argv += ["--max-layers", max_layers] if max_layers else []
    code, err = run_cli(sweep_main, argv)
    if code != 0:
        assert_named_error(code, err, d / "exits.jsonl", d / "out", "threshold", "max_layers", "max-layers",
                           policy, "classifier")
        return
    assert (d / "out" / "sweep.json").is_file() and (d / "out" / "sweep.md").is_file()
    assert not forbidden(scores.decode("utf-8"))


@SETTINGS
@given(data=st.data())
def test_a_damaged_token_model_is_named(tmp_path, data):
    from ee_asr.data.tokenizer import Tokenizer, train_sentencepiece

    model = tmp_path / "bpe.model"
    if not model.is_file():
        (tmp_path / "t.txt").write_text("hello world\ngood morning\n")
        train_sentencepiece(tmp_path / "t.txt", tmp_path / "bpe", vocab_size=20)
    b = model.read_bytes()
    at = data.draw(st.integers(0, len(b) - 1))
    damaged = data.draw(st.sampled_from([b[:at], b[:at] + data.draw(st.binary(min_size=1, max_size=8)) + b[at + 8:],
                                         data.draw(st.binary(max_size=64))]))
    path = fresh_dir(tmp_path) / "bpe.model"
    path.write_bytes(damaged)
    try:
        tok = Tokenizer(path)
    except UserError as e:
        assert str(path) in str(e)
        return
    assert tok.vocab_size > 2 and isinstance(tok.decode(tok.encode("hello")), str)


@SETTINGS
@given(values=st.lists(st.one_of(st.integers(-2, 10**6).map(str), st.sampled_from(["", "1.5", "²", "٣", "0x10", "1e3",
                                                                                  " 7", "nan"]), st.text(max_size=3)),
                       min_size=1, max_size=5))
def test_utterance_lengths_are_positive_integers_or_named(tmp_path, values):
    from ee_asr.data.datadir import read_lengths

    path = fresh_dir(tmp_path) / "utt2num_frames"
    path.write_bytes("".join(f"u{i} {v}\n" for i, v in enumerate(values)).encode("utf-8", "surrogatepass"))
    try:
        lengths = read_lengths(path)
    except DataError as e:
        assert str(path) in str(e)
        return
    assert list(lengths) == [f"u{i}" for i in range(len(values))]
    assert list(lengths.values()) == [int(v) for v in values] and min(lengths.values()) >= 1
    assert all(re.fullmatch(" *[0-9]+ *", v) for v in values)  # nothing else was read as a number


# ---- compare: experiments' results.json, config.yaml and per-utterance errors -------------------------

@st.composite
def experiments(draw):
    """{relative path: bytes} of two scored experiments (exp/a, exp/b), one file of one damaged."""
    files = {}
    for name, weights in (("a", "equal"), ("b", "[0.0, 1.0]")):
        files[f"{name}/results.json"] = json.dumps({f"decode_test/wer_exit{L}": draw(st.floats(0, 100))
                                                    for L in (2, 4)}).encode()
        files[f"{name}/config.yaml"] = (f"encoder_conf:\n  exit_layers: [2, 4]\nmodel_conf:\n  exit_weighting: "
                                        f"{weights}\n").encode()
        files[f"{name}/decode_test/exits.jsonl"] = b"".join(
            json.dumps({"utt": f"u{u}", "exit": L, "errors": draw(st.integers(0, 5)), "ref_words": 5}).encode()
            + b"\n" for u in range(3) for L in (2, 4))
    target = draw(st.sampled_from(sorted(files)))
    b = files[target]
    at = draw(st.integers(0, len(b)))
    kind = draw(st.sampled_from(["none", "insert", "bytes", "truncate", "value", "value", "remove"]))
    if kind == "insert":
        files[target] = b[:at] + draw(CHUNKS).encode("utf-8", "surrogatepass") + b[at:]
    elif kind == "bytes":
        files[target] = b[:at] + draw(st.binary(min_size=1, max_size=3)) + b[at:]
    elif kind == "truncate":
        files[target] = b[:at]
    elif kind == "value":
        value = json.dumps(draw(FIELD_VALUES)).encode()
        files[target] = re.sub(rb"(: |exit_layers: |exit_weighting: )[^,}\n]+", lambda m: m.group(1) + value, b,
                               count=draw(st.integers(1, 3)))
    elif kind == "remove":
        del files[target]
    return files


@SETTINGS
@given(files=experiments(), reference=st.sampled_from([None, "a", "b", "missing"]))
def test_compare_names_the_file_or_prints_its_table(tmp_path, files, reference):
    from ee_asr.bin.compare import main as compare_main

    d = fresh_dir(tmp_path) / "exp"
    for name, b in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(b)
    argv = [d / "a", d / "b", "--output", d / "table.md"] + (["--reference", d / reference] if reference else [])
    code, err = run_cli(compare_main, argv)
    if code != 0:
        assert_named_error(code, err, *(d / name for name in files), d / "a", d / "b", d / str(reference))
        return
    table = (d / "table.md").read_text()
    assert "## test" in table and "exit 2" in table


def test_an_output_path_blocked_by_a_file_is_named(tmp_path):
    from ee_asr.common.atomic import atomic_write_text, make_output_dir

    (tmp_path / "f").write_text("")
    blocked = re.escape(str(tmp_path / "f" / "d"))
    with pytest.raises(UserError, match=rf"^cannot write to directory {blocked}: Not a directory$"):
        atomic_write_text(tmp_path / "f" / "d" / "x.txt", "x")
    with pytest.raises(UserError, match="a file of that name is in the way"):
        make_output_dir(tmp_path / "f")
    made = make_output_dir(tmp_path / "new" / "dir", probe=True)
    assert made.is_dir() and not list(made.iterdir())  # the probe file is gone
