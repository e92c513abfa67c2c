"""English sentences from free text that Debian ships (WordNet examples, fortunes).

The mini corpus narrows the domain on purpose: only sentences whose every word is among the
`vocab_size` most frequent words of the pool. A small CPU model then meets each word many
times, which is what lets it reach a meaningful WER in minutes of training.
"""

import collections
import itertools
import re
from pathlib import Path

from ee_asr.common.errors import UserError

WORDNET = Path("/usr/share/wordnet")
FORTUNES = Path("/usr/share/games/fortunes")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
MIN_WORDS, MAX_WORDS = 4, 12


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


def read_raw(text_file=None):
    """The source text: one sentence (or longer passage) per item."""
    if text_file is not None:
        return Path(text_file).read_text(encoding="utf-8").splitlines()
    if not WORDNET.is_dir() and not FORTUNES.is_dir():
        raise UserError(f"no sentence source: install Debian's wordnet-base and fortunes-min "
                        f"({WORDNET}, {FORTUNES}) or pass --text-file")
    return list(_wordnet_examples(WORDNET)) + list(_fortunes(FORTUNES))


def read_pool(raw, min_words=MIN_WORDS, max_words=MAX_WORDS):
    pool = {n for n in map(normalize, raw) if n and min_words <= len(n.split()) <= max_words}
    return sorted(pool)


def top_words(pool, vocab_size):
    counts = collections.Counter(w for s in pool for w in s.split())
    return {w for w, _ in counts.most_common(vocab_size)}


def narrow_domain(pool, vocab):
    return [s for s in pool if all(w in vocab for w in s.split())]


def fragments(raw, vocab, min_words=MIN_WORDS, max_words=MAX_WORDS):
    """Runs of in-vocabulary words from every source sentence, split at punctuation.

    Whole in-vocabulary sentences are few (~1,700 of 45,000 within 1,000 words), so a training
    set of thousands of utterances says each one many times and the model learns the sentences
    by heart; the runs of in-vocabulary words inside all the other sentences give ~12,000 more
    distinct texts over the same words ("the children must learn to", "for her own good").
    """
    out = set()
    for text in raw:
        for piece in re.split(r"[^A-Za-z' ]+", text):
            for in_vocab, run in itertools.groupby(piece.lower().split(), key=vocab.__contains__):
                if not in_vocab:
                    continue
                run = list(run)
                for i in range(0, len(run), max_words):
                    chunk = run[i:i + max_words]
                    if len(chunk) >= min_words:
                        out.add(" ".join(chunk))
    return sorted(out)


def overlaps(text, held_out):
    """True when `text` contains, or is contained in, a held-out sentence (on word boundaries)."""
    t = f" {text} "
    return any(f" {h} " in t or t in f" {h} " for h in held_out)
