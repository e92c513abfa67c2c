"""Word and character error counts (hits, substitutions, deletions, insertions) with jiwer."""

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
