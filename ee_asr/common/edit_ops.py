"""Word and character error counts (hits, substitutions, deletions, insertions) with jiwer, and
the one error-rate formula that training validation, scoring, sweeps, policies and benchmarks share."""

import jiwer


def _counts(out):
    return {"hits": out.hits, "sub": out.substitutions, "del": out.deletions, "ins": out.insertions}


def word_counts(ref, hyp):
    ref, hyp = ref.split(), hyp.split()
    if not ref:
        return {"hits": 0, "sub": 0, "del": 0, "ins": len(hyp)}
    if not hyp:
        return {"hits": 0, "sub": 0, "del": len(ref), "ins": 0}
    return _counts(jiwer.process_words(" ".join(ref), " ".join(hyp)))


def char_counts(ref, hyp):
    # Spaces count as characters, as in ESPnet's CER where words are joined by a space token.
    ref, hyp = " ".join(ref.split()), " ".join(hyp.split())
    if not ref:
        return {"hits": 0, "sub": 0, "del": 0, "ins": len(hyp)}
    if not hyp:
        return {"hits": 0, "sub": 0, "del": len(ref), "ins": 0}
    return _counts(jiwer.process_characters(ref, hyp))


def error_rate(errors, total):
    """Percent errors over reference units (words or characters); 0 references give 0, not a crash."""
    return 100.0 * errors / max(total, 1)


def errors_of(counts):
    """Substitutions + deletions + insertions of a word_counts/char_counts result."""
    return counts["sub"] + counts["del"] + counts["ins"]
