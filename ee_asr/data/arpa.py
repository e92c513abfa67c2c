"""Reading an ARPA language model's header and unigrams, checked before KenLM sees the file.

KenLM reports a bad file with a C++ FormatLoadException naming a source line of its own, and
reads only models of order 2 or more; flashlight passes that on as a bare RuntimeError. Here the
file is opened as KenLM would (gzip-compressed ARPA included: LibriSpeech's LMs come so), its
header checked, and KenLM's own complaint, when it still has one, becomes a UserError naming
the file.
"""

import gzip
import re
import zlib

from ee_asr.common.errors import DataError
from ee_asr.common.lines import char_name, read_bytes

GZIP_MAGIC = b"\x1f\x8b"
KENLM_BINARY_MAGIC = b"mmap lm "
_NGRAM = re.compile(r"^ngram\s+(\d+)\s*=\s*(\d+)$")


def _open_text(path):
    """A binary handle on the ARPA file, decompressing gzip; DataError when it is missing or binary."""
    head = read_bytes(path, 8, "file is missing (build it with ee_asr.bin.build_lm)", "an ARPA LM")
    if head.startswith(KENLM_BINARY_MAGIC):
        raise DataError(path, "is a KenLM binary model: give the ARPA file it was built from (the lexicon is read "
                              "from its unigrams)")
    return gzip.open(path, "rb") if head.startswith(GZIP_MAGIC) else open(path, "rb")


def _lines(path):
    """(line number, stripped text) of the ARPA file, with named errors for undecodable bytes."""
    f = _open_text(path)
    try:
        with f:
            for n, line in enumerate(f, start=1):
                try:
                    yield n, line.decode("utf-8").strip()
                except UnicodeDecodeError as e:
                    raise DataError(path, f"is not UTF-8 text ({e.reason}): not an ARPA LM", n) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(path, f"is a damaged gzip file ({e})") from None


def read_arpa(path):
    """Return ({order: n-gram count} from the header, unigram words in file order). DataError
    naming file and line when the file is not an ARPA LM KenLM can load."""
    counts, words, section, header_seen = {}, [], None, False
    for n, line in _lines(path):
        bad = next((c for c in line if c < " " and c != "\t"), None)
        if bad is not None:
            raise DataError(path, f"holds {char_name(bad)}: not an ARPA LM", n)
        if not line:
            continue
        if line.startswith("\\"):
            if section == 1:
                break  # the unigrams are read: the rest is KenLM's to check
            if line == "\\data\\":
                header_seen, section = True, "header"
                continue
            m = re.fullmatch(r"\\(\d+)-grams:", line)
            if not header_seen or not m:
                raise DataError(path, f"unexpected {line[:40]!r}: an ARPA LM starts with \\data\\ then "
                                      "'ngram N=count' lines and \\1-grams:", n)
            section = int(m.group(1))
            if section != 1:
                raise DataError(path, f"{line} before \\1-grams:", n)
            _check_header(path, counts, n)
        elif section == "header":
            m = _NGRAM.match(line)
            if not m:
                raise DataError(path, f"bad header line {line[:40]!r}: expected 'ngram N=count'", n)
            counts[int(m.group(1))] = int(m.group(2))
        elif section == 1:
            fields = line.split()
            if len(fields) < 2:
                raise DataError(path, f"bad unigram line {line[:40]!r}: expected 'log10p word [backoff]'", n)
            try:
                float(fields[0])
            except ValueError:
                raise DataError(path, f"bad unigram line {line[:40]!r}: {fields[0]!r} is not a log probability",
                                n) from None
            words.append(fields[1])
        else:
            raise DataError(path, f"unexpected {line[:40]!r}: an ARPA LM starts with \\data\\", n)
    if section != 1:
        raise DataError(path, "has no \\data\\ header and \\1-grams: section: not an ARPA LM")
    return counts, words


def _check_header(path, counts, line):
    orders = sorted(counts)
    if orders != list(range(1, len(orders) + 1)):
        raise DataError(path, f"the header lists orders {orders}, not 1..N", line)
    if len(orders) < 2:
        raise DataError(path, "is a unigram LM: KenLM loads only models of order 2 or more (build it with "
                              "ee_asr.bin.build_lm --order 2 or higher)", line)


def load_kenlm(path, word_dict):
    """flashlight's KenLM on `path`; its FormatLoadException becomes a DataError with KenLM's reason."""
    from flashlight.lib.text.decoder.kenlm import KenLM

    try:
        return KenLM(str(path), word_dict)
    except (RuntimeError, UnicodeDecodeError) as e:
        # a message quoting the file's undecodable bytes reaches Python as a UnicodeDecodeError
        message = e.object.decode("utf-8", "replace") if isinstance(e, UnicodeDecodeError) else str(e)
        # "<kenlm source>:<line> in <signature> threw <X>Exception ....\n<reason>": keep the reason
        reason = message.split("\n", 1)[-1].strip() or message
        raise DataError(path, f"KenLM cannot load it: {reason}") from None
