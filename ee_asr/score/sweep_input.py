"""Reading and checking the offline sweep's input: JSON lines, one per utterance and exit.

Every problem is a DataError naming the file and line: an empty file, a line that is not a
JSON object, a missing field, an exit layer, error count or word count that is not a
non-negative integer, the same utterance and exit twice, and utterances decoded at different
exits (checked by the sweep, which needs every utterance at every exit).
"""

import json
import math

from ee_asr.common.errors import DataError
from ee_asr.common.lines import read_lines

REQUIRED = ("utt", "exit", "ref_words", "errors")
COUNTS = ("exit", "ref_words", "errors")


def _count(value):
    """A non-negative integer (JSON 3 or 3.0), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if value < 0 or int(value) != value:
        return None
    return int(value)


def check_record(record, path, line):
    if not isinstance(record, dict):
        raise DataError(path, "not a JSON object", line)
    for key in REQUIRED:
        if key not in record:
            raise DataError(path, f"no '{key}' field", line)
    for key in COUNTS:
        n = _count(record[key])
        if n is None:
            raise DataError(path, f"'{key}' must be a non-negative integer, got {record[key]!r}", line)
        record[key] = n
    record["utt"] = str(record["utt"])
    return record


def read_sweep_records(path):
    """Records of a sweep input file, checked; `_line` holds each record's line number."""
    records, seen = [], {}
    for n, text in read_lines(path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(path, f"not valid JSON: {e.msg}", n) from None
        record = check_record(record, path, n)
        key = (record["utt"], record["exit"])
        if key in seen:
            raise DataError(path, f"utterance '{key[0]}' at exit {key[1]} again (first on line {seen[key]})", n)
        seen[key] = n
        record["_line"] = n
        records.append(record)
    if not records:
        raise DataError(path, "no records: the file is empty")
    return records
