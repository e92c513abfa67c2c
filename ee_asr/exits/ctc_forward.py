"""The CTC sequence posterior p(hypothesis | x) in numpy: the forward algorithm in log space over
the blank-extended label sequence: the sequence posterior of exits/scores.py for both backends,
exp(-ctc_loss) of torch without torch. One loop over frames, vectorised over the batch and the
label positions; float64, so it differs from torch's float32 ctc_loss by rounding only.
"""

import numpy as np

from ee_asr.data.tokenizer import BLANK_ID as BLANK


def log_sequence_posterior(log_probs, lengths, hyps, blank=BLANK):
    """log_probs (B, T, V), lengths (B,), hyps: B token-id lists -> (B,) float64 log p(hyp | x);
    -inf where the hypothesis has no alignment in its frames (torch's ctc_loss gives inf then)."""
    b = len(hyps)
    if b == 0:
        return np.zeros(0)
    lengths = np.asarray(lengths, dtype=np.int64)
    ulens = np.array([len(h) for h in hyps], dtype=np.int64)
    s_max = 2 * int(ulens.max()) + 1
    ext = np.full((b, s_max), blank, dtype=np.int64)  # blank, y1, blank, y2, ..., blank
    for i, h in enumerate(hyps):
        ext[i, 1:2 * len(h):2] = h
    valid = np.arange(s_max)[None, :] < (2 * ulens + 1)[:, None]
    # a label may be reached from two positions back unless it repeats the label there (or is blank)
    skip = np.zeros((b, s_max), dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    skip_add = np.where(skip, 0.0, -np.inf)
    t_max = int(lengths.max())
    if t_max == 0:  # no frames: only the empty hypothesis, with probability 1
        return np.where(ulens == 0, 0.0, -np.inf)
    # gathered before the cast: only the hypothesis' tokens become float64, not the vocabulary
    emit = np.take_along_axis(log_probs[:, :t_max], np.broadcast_to(ext[:, None, :], (b, t_max, s_max)), axis=2)
    emit = np.where(valid[:, None, :], emit.astype(np.float64), -np.inf)
    # alphas behind two columns that stay -inf: the one- and two-back terms are views, not copies
    buf = np.full((b, s_max + 2), -np.inf)
    alpha, one, two = buf[:, 2:], buf[:, 1:-1], buf[:, :-2]
    alpha[:, :2] = emit[:, 0, :2]
    ending = {}  # frame -> rows whose last frame it is: their result is read there
    for row, n in enumerate(lengths.tolist()):
        ending.setdefault(n - 1, []).append(row)
    out = np.where(ulens == 0, 0.0, -np.inf)  # rows without frames keep this
    end = 2 * ulens
    with np.errstate(invalid="ignore"):  # logaddexp(-inf, -inf) is -inf, as wanted
        for t in range(t_max):
            if t:
                alpha[:] = np.logaddexp(np.logaddexp(alpha, one), two + skip_add) + emit[:, t]
            if t in ending:
                rows = np.array(ending[t])
                # the last blank or the last label; for the empty hypothesis column 1 is always -inf
                out[rows] = np.logaddexp(buf[rows, 2 + end[rows]], buf[rows, 1 + end[rows]])
    return out


def sequence_posterior(log_probs, lengths, hyps, blank=BLANK):
    """(B,) p(hyp | x)."""
    return np.exp(log_sequence_posterior(log_probs, lengths, hyps, blank))
