"""The attention-rescoring rule, shared by the PyTorch search (decode/attention_rescoring.py) and
the torch-free runtime (deploy/rescoring.py), so that both pick the same hypothesis:

    score = ctc_weight * log p_ctc(y) + (1 - ctc_weight) * log p_att(y <eos>) + length_bonus * |y|
"""

import numpy as np


def combine(ctc_scores, att_scores, lengths, ctc_weight, length_bonus):
    """The rescoring score of each hypothesis (sequences of equal length)."""
    return [ctc_weight * c + (1.0 - ctc_weight) * a + length_bonus * n
            for c, a, n in zip(ctc_scores, att_scores, lengths)]


def ranked(nbests, att_scores, ctc_weight, length_bonus):
    """Per utterance [(token tuple, ctc, att, score), ...] in the CTC beam's order: `nbests` the
    utterances' [(tokens, ctc score), ...], `att_scores` the decoder's scores of all of them in
    that order, one flat list."""
    out, k = [], 0
    for nb in nbests:
        att = list(att_scores[k:k + len(nb)])
        k += len(nb)
        total = combine([c for _, c in nb], att, [len(h) for h, _ in nb], ctc_weight, length_bonus)
        out.append([(h, c, a, t) for (h, c), a, t in zip(nb, att, total)])
    return out


def best_index(scores):
    """The first of the highest scores: ties keep the CTC beam's order."""
    return max(range(len(scores)), key=lambda k: (scores[k], -k))


def hypothesis_ys(hyps, sos_eos):
    """Token-id lists -> (ys (N, U+2) int64: <sos> tokens <eos>, padded with <eos>; ys_lens (N,):
    tokens + 1, the teacher-forced steps of each, <eos> included). <sos> and <eos> are one id."""
    longest = max((len(h) for h in hyps), default=0)
    ys = np.full((len(hyps), longest + 2), sos_eos, dtype=np.int64)
    for n, h in enumerate(hyps):
        ys[n, 1:len(h) + 1] = h
    return ys, np.array([len(h) + 1 for h in hyps], dtype=np.int64)


def check_weights(nbest_size, ctc_weight):
    """Raise ValueError naming the option for an N-best size or a CTC weight out of range."""
    if nbest_size < 1:
        raise ValueError(f"the rescoring N-best size must be at least 1, not {nbest_size}")
    if not 0.0 <= ctc_weight <= 1.0:
        raise ValueError(f"the rescoring CTC weight must be in [0, 1], not {ctc_weight}")
