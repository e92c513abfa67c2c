"""CTC prefix beam search without a language model, in pure Python: the reference that the
compiled N-best (exits/ctc_nbest.py, which decoding uses) is tested against.

Each prefix keeps two log-probabilities: ending in blank and ending in its last token. Per
frame only the tokens with the highest posteriors are tried (`token_beam`), which is what
makes a beam of hundreds affordable in Python.
"""

import math

import numpy as np

NEG_INF = -math.inf


def _logaddexp(a, b):
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def prefix_beam_search(log_probs: np.ndarray, beam: int = 10, token_beam: int = 8, blank: int = 0):
    """log_probs (T, V) for one utterance -> [(token tuple, total log score), ...], best first."""
    beams = {(): (0.0, NEG_INF)}  # prefix -> (log p ending in blank, log p ending in a token)
    for frame in log_probs:
        candidates = np.argpartition(-frame, min(token_beam, len(frame) - 1))[:token_beam]
        nxt = {}
        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            for tok in candidates:
                p = float(frame[tok])
                if tok == blank:
                    b, nb = nxt.get(prefix, (NEG_INF, NEG_INF))
                    nxt[prefix] = (_logaddexp(b, total + p), nb)
                    continue
                new = prefix + (int(tok),)
                b, nb = nxt.get(new, (NEG_INF, NEG_INF))
                # a repeated token needs a blank between, else it merges into the prefix
                extend = pb + p if prefix and prefix[-1] == tok else total + p
                nxt[new] = (b, _logaddexp(nb, extend))
                if prefix and prefix[-1] == tok:
                    b, nb = nxt.get(prefix, (NEG_INF, NEG_INF))
                    nxt[prefix] = (b, _logaddexp(nb, pnb + p))
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)
        beams = dict(ranked[:beam])
    return [(prefix, _logaddexp(*scores)) for prefix, scores in beams.items()]
