"""English sentences from free text that Debian ships (WordNet examples, fortunes).

The mini corpus narrows the domain on purpose: only sentences whose every word is among the
`vocab_size` most frequent words of the pool. A small CPU model then meets each word many
times, which is what lets it reach a meaningful WER in minutes of training.
"""

import collections
import re
from pathlib import Path

from ee_asr.common.errors import UserError

WORDNET = Path("/usr/share/wordnet")
FORTUNES = Path("/usr/share/games/fortunes")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _wordnet_examples(root):
    for path in sorted(root.glob("data.*")):
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # license header lines start with two spaces
            yield from re.findall(r'"([^"]+)"', line.split("|", 1)[1])


def _fortunes(root):
    for name in ("fortunes", "literature", "riddles"):
        path = root / name
        if path.is_file():
            for record in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
                yield from re.split(r"(?<=[.!?])\s+", " ".join(record.split()))


def normalize(sentence):
    """Lower-case words separated by single spaces, or None when anything else is in it."""
    s = sentence.strip().rstrip(".!?").lower().replace(",", " ").replace(";", " ")
    words = s.split()
    return " ".join(words) if words and all(WORD.fullmatch(w) for w in words) else None


def read_pool(text_file=None, min_words=4, max_words=12):
    if text_file is not None:
        raw = Path(text_file).read_text(encoding="utf-8").splitlines()
    else:
        if not WORDNET.is_dir() and not FORTUNES.is_dir():
            raise UserError(f"no sentence source: install Debian's wordnet-base and fortunes-min "
                            f"({WORDNET}, {FORTUNES}) or pass --text-file")
        raw = list(_wordnet_examples(WORDNET)) + list(_fortunes(FORTUNES))
    pool = {n for n in map(normalize, raw) if n and min_words <= len(n.split()) <= max_words}
    return sorted(pool)


def narrow_domain(pool, vocab_size):
    counts = collections.Counter(w for s in pool for w in s.split())
    vocab = {w for w, _ in counts.most_common(vocab_size)}
    return [s for s in pool if all(w in vocab for w in s.split())]
