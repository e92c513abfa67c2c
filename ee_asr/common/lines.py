"""One line model for every Kaldi-style text file ee-asr reads: Kaldi's.

A line ends at `\\n` and nowhere else. `str.splitlines()` also breaks at `\\r`, `\\v`, `\\f`,
U+001C..U+001E, U+0085 and U+2028/U+2029, so a transcript holding one of them silently becomes
a second line, its tail a fake utterance id that trains. Here any such character, and any
other control character but the tab, is an error naming the file, line, column and character:
it is either a Windows line end (`\\r`) or a corrupted file, and neither should be guessed at.
A byte-order mark is refused too: it would become part of the first id.
"""

import re
import unicodedata
from pathlib import Path

from ee_asr.common.errors import DataError

# C0 controls but tab and newline, DEL, C1 controls (U+0085 among them), the Unicode line and
# paragraph separators, the byte-order mark
_BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
# unicodedata has no names for control characters
_CONTROL_NAMES = {"\x00": "NULL", "\x09": "CHARACTER TABULATION", "\x0b": "LINE TABULATION", "\x0c": "FORM FEED",
                  "\x0d": "CARRIAGE RETURN", "\x1b": "ESCAPE", "\x1c": "FILE SEPARATOR",
                  "\x1d": "GROUP SEPARATOR", "\x1e": "RECORD SEPARATOR", "\x1f": "UNIT SEPARATOR",
                  "\x7f": "DELETE", "\x85": "NEXT LINE (NEL)"}
_GZIP_MAGIC = b"\x1f\x8b"


def char_name(c):
    """'U+000D CARRIAGE RETURN': the code point and its Unicode name, for error messages."""
    name = unicodedata.name(c, None) or _CONTROL_NAMES.get(c, "control character")
    return f"U+{ord(c):04X} {name}"


def _where(text, pos):
    """1-based (line, column) of character offset `pos`."""
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def read_bytes(path, size=-1, missing="file is missing", what="a file"):
    """The file's bytes (its first `size` if given); DataError when it is missing (`missing` says
    so), a directory (not `what`) or unreadable."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except FileNotFoundError:
        raise DataError(path, missing) from None
    except IsADirectoryError:
        raise DataError(path, f"is a directory, not {what}") from None
    except OSError as e:
        raise DataError(path, f"cannot be read: {e.strerror}") from None


def decode_text(path, data):
    """`data` (the bytes of `path`) as checked UTF-8 text; DataError naming line and column of the
    first undecodable byte or forbidden character."""
    if data.startswith(_GZIP_MAGIC):
        raise DataError(path, "is gzip-compressed: gunzip it first")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        head = data[: e.start]
        line = head.count(b"\n") + 1
        column = len(head[head.rfind(b"\n") + 1:].decode("utf-8", errors="replace")) + 1
        raise DataError(path, f"is not valid UTF-8 ({e.reason}): byte 0x{data[e.start]:02x} at column {column}",
                        line) from None
    bad = _BAD.search(text)
    if bad:
        line, column = _where(text, bad.start())
        c = bad.group()
        why = ("a Windows line end: convert the file with dos2unix" if c == "\r" else
               "lines end at \\n only and hold no other line separator or control character but tab")
        raise DataError(path, f"column {column}: {char_name(c)} ({why})", line)
    return text


def read_lines(path):
    """The lines of a UTF-8 text file, split at `\\n` only, as (line number, text) pairs; the
    final newline is optional. DataError naming file, line and column for anything else."""
    text = decode_text(path, read_bytes(path))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return list(enumerate(lines, start=1))
