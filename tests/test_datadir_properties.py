"""Property-based tests of the Kaldi data-dir readers: any valid table round-trips through
write_table/read_table, and a malformed line is rejected naming its file and line."""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ee_asr.common.errors import DataError
from ee_asr.data.datadir import check_sorted_unique, read_table, write_table

# ids: no whitespace; values: printable text with single inner spaces, no leading/trailing space
IDS = st.text(alphabet=string.ascii_letters + string.digits + "-_.éü", min_size=1, max_size=12)
WORDS = st.text(alphabet=string.ascii_letters + string.digits + "'-éü漢", min_size=1, max_size=8)
VALUES = st.lists(WORDS, min_size=1, max_size=5).map(" ".join)
TABLES = st.dictionaries(IDS, VALUES, min_size=1, max_size=20)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(table=TABLES)
def test_any_valid_table_round_trips(tmp_path, table):
    path = tmp_path / "text"
    write_table(path, table.items())
    rows = read_table(path)
    assert {k: v for k, v, _ in rows} == table
    assert [n for _, _, n in rows] == list(range(1, len(table) + 1))
    check_sorted_unique(path, rows)  # written in C order, unique: what the validator demands


@SETTINGS
@given(table=TABLES, where=st.integers(min_value=0), bad=st.sampled_from(["", "   ", "lonely_id", "id2 \t "]))
def test_a_malformed_line_is_named(tmp_path, table, where, bad):
    lines = [f"{k} {v}" for k, v in sorted(table.items())]
    at = where % (len(lines) + 1)
    lines.insert(at, bad)
    path = tmp_path / "text"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_table(path)
    assert e.value.line == at + 1 and f"{path}:{at + 1}:" in str(e.value)
    assert ("empty line" if not bad.strip() else "has an empty value") in str(e.value)


@SETTINGS
@given(table=TABLES, data=st.data())
def test_duplicate_or_unsorted_ids_are_named(tmp_path, table, data):
    rows = [(k, v, n) for n, (k, v) in enumerate(sorted(table.items()), start=1)]
    i = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    dup = rows[:i + 1] + [(rows[i][0], "again", 0)] + rows[i + 1:]
    dup = [(k, v, n) for n, (k, v, _) in enumerate(dup, start=1)]
    with pytest.raises(DataError, match=f"duplicate id '{rows[i][0]}'") as e:
        check_sorted_unique(tmp_path / "text", dup)
    assert e.value.line == i + 2
    if len(rows) > 1:
        swapped = list(reversed(rows))
        with pytest.raises(DataError, match="not sorted"):
            check_sorted_unique(tmp_path / "text", swapped)


@SETTINGS
@given(table=TABLES, cut=st.integers(min_value=1, max_value=3))
def test_invalid_utf8_is_named_with_its_line(tmp_path, table, cut):
    lines = [f"{k} {v}".encode() for k, v in sorted(table.items())]
    at = cut % len(lines)
    lines[at] = lines[at] + b" \xff\xfe"
    path = tmp_path / "text"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match="is not valid UTF-8") as e:
        read_table(path)
    assert e.value.line == at + 1
