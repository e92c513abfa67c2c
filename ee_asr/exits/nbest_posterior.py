"""The paper's N-best confidence: a softmax over the total log-scores of an N-best list, the share
of the best. Any N-best serves (compiled CTC beam, joint CTC/attention beam, LM beam, the numpy
prefix beam of the torch-free runtime); numpy only, so ee_asr/deploy can import it."""

import numpy as np


def nbest_posterior(nbest):
    """`nbest`: (hypothesis, total log-score) pairs -> share of the best in their softmax."""
    scores = np.array([s for _, s in nbest])
    scores = scores - scores.max()
    return float(1.0 / np.exp(scores).sum())
