"""Hypothesis consistency between adjacent exits (as PABEE does for classifiers in NLP).

disagreement = token edit distance between this exit's hypothesis and the exit below's,
divided by the longer of the two (at least 1): 0 when they are identical, at most 1. Length
normalised, so one threshold means the same on a 3-token and a 30-token utterance; on short
utterances any threshold below 1/len still means "identical". The first exit has nothing
below it: disagreement 1, so `agree` never stops there unless the threshold is 1.
"""

import editdistance


def disagreement(hyp, below):
    """hyp, below: token-id lists (below None at the first exit) -> float in [0, 1]."""
    if below is None:
        return 1.0
    return editdistance.eval(list(hyp), list(below)) / max(len(hyp), len(below), 1)
