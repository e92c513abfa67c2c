"""Kaldi data directories: reading, sorting and validating.

A data dir holds `wav.scp text utt2spk spk2utt` and optionally `segments`. Every file is
`<id> <value>` per line, sorted by id in C (byte) order. Python compares `str` by code
point, which for UTF-8 text is the same order as bytes, so `sorted()` matches `LC_ALL=C sort`.
"""

import re
from pathlib import Path

from ee_asr.common.atomic import atomic_open
from ee_asr.common.errors import DataError
from ee_asr.common.lines import read_lines
from ee_asr.data.audio import check_audio_readable

REQUIRED = ("wav.scp", "text", "utt2spk", "spk2utt")
_SEP = re.compile(r"[ \t]+")


def split_line(line):
    """Kaldi's split of a line into id and value: at the first run of spaces or tabs (not at
    other Unicode spaces, which belong to the id or the transcript)."""
    parts = _SEP.split(line.strip(" \t"), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def read_table(path, allow_empty_value=False):
    """Read `<id> <value>` lines; return a list of (id, value, line_number). Lines as Kaldi
    reads them (common/lines.py); DataError naming file and line for anything else."""
    path = Path(path)
    rows = []
    for n, line in read_lines(path):
        key, value = split_line(line)
        if not key:
            raise DataError(path, "empty line", n)
        if not value and not allow_empty_value:
            raise DataError(path, f"'{key}' has an empty value", n)
        rows.append((key, value, n))
    return rows


def read_dict(path, **kw):
    return {k: v for k, v, _ in read_table(path, **kw)}


def read_lengths(path):
    """{id: n} of a `<id> <count>` file (utt2num_frames); DataError naming the line of a count
    that is not a positive integer."""
    lengths = {}
    for key, value, n in read_table(path):
        if not re.fullmatch("[0-9]+", value) or int(value) < 1:
            raise DataError(path, f"'{key}' has length {value!r}, not a positive integer", n)
        lengths[key] = int(value)
    return lengths


def write_table(path, items):
    """Write (id, value) pairs sorted in C order, atomically."""
    with atomic_open(path) as f:
        for key, value in sorted(items, key=lambda kv: kv[0]):
            f.write(f"{key} {value}\n")


def check_sorted_unique(path, rows):
    for (prev, _, _), (key, _, line) in zip(rows, rows[1:]):
        if key == prev:
            raise DataError(path, f"duplicate id '{key}'", line)
        if key < prev:
            raise DataError(path, f"not sorted: '{key}' comes after '{prev}' (use LC_ALL=C sort)", line)


def _check_same_ids(path_a, ids_a, path_b, ids_b):
    only_a = sorted(set(ids_a) - set(ids_b))
    if only_a:
        raise DataError(path_a, f"id '{only_a[0]}' (and {len(only_a) - 1} more) is not in {path_b}",
                        ids_a[only_a[0]])
    only_b = sorted(set(ids_b) - set(ids_a))
    if only_b:
        raise DataError(path_b, f"id '{only_b[0]}' (and {len(only_b) - 1} more) is not in {path_a}",
                        ids_b[only_b[0]])


def validate_data_dir(data_dir, check_audio=True):
    """Raise DataError naming file and line for the first problem; return the utterance count."""
    d = Path(data_dir)
    if not d.is_dir():
        raise DataError(d, "data directory does not exist")
    tables = {}
    for name in REQUIRED + (("segments",) if (d / "segments").exists() else ()):
        rows = read_table(d / name)
        check_sorted_unique(d / name, rows)
        tables[name] = rows
    ids = {name: {k: n for k, _, n in rows} for name, rows in tables.items()}
    _check_same_ids(d / "text", ids["text"], d / "utt2spk", ids["utt2spk"])
    if "segments" in tables:
        _check_same_ids(d / "text", ids["text"], d / "segments", ids["segments"])
        for key, value, line in tables["segments"]:
            fields = value.split()
            if len(fields) != 3:
                raise DataError(d / "segments", f"'{key}' needs '<reco> <start> <end>'", line)
            if fields[0] not in ids["wav.scp"]:
                raise DataError(d / "segments", f"recording '{fields[0]}' is not in wav.scp", line)
            try:
                start, end = float(fields[1]), float(fields[2])
            except ValueError:
                raise DataError(d / "segments", f"'{key}' has non-numeric times", line) from None
            if not 0 <= start < end < float("inf"):  # nan and inf too
                raise DataError(d / "segments", f"'{key}' has start {start} >= end {end}", line)
    else:
        _check_same_ids(d / "text", ids["text"], d / "wav.scp", ids["wav.scp"])
    spk2utt = {k: v.split() for k, v, _ in tables["spk2utt"]}
    utt2spk = {k: v for k, v, _ in tables["utt2spk"]}
    for key, value, line in tables["utt2spk"]:
        if key not in spk2utt.get(value, ()):
            raise DataError(d / "spk2utt", f"speaker '{value}' does not list '{key}' (see utt2spk line {line})")
    for spk, utts in spk2utt.items():
        for utt in utts:
            if utt2spk.get(utt) != spk:
                raise DataError(d / "spk2utt", f"'{utt}' of speaker '{spk}' disagrees with utt2spk",
                                ids["spk2utt"][spk])
    if check_audio:
        for key, value, line in tables["wav.scp"]:
            problem = check_audio_readable(value)
            if problem:
                raise DataError(d / "wav.scp", f"audio of '{key}': {problem}", line)
    return len(tables["text"])


def fix_data_dir(data_dir):
    """Sort every file in C order and rebuild spk2utt from utt2spk."""
    d = Path(data_dir)
    for name in ("wav.scp", "text", "utt2spk", "segments"):
        if (d / name).exists():
            write_table(d / name, [(k, v) for k, v, _ in read_table(d / name)])
    spk2utt = {}
    for utt, spk, _ in read_table(d / "utt2spk"):
        spk2utt.setdefault(spk, []).append(utt)
    write_table(d / "spk2utt", [(s, " ".join(sorted(u))) for s, u in spk2utt.items()])
