"""Greedy CTC search: the best token per frame, repeats merged, blanks dropped. numpy in, so
both backends use it (a CPU torch tensor is read as numpy without a copy)."""

import numpy as np

from ee_asr.data.tokenizer import BLANK_ID


def greedy_from_best(best, lengths):
    """best (B, T) token ids per frame, lengths (B,) -> B token-id lists."""
    out = []
    for row, n in zip(np.asarray(best), np.asarray(lengths).tolist()):
        row = row[:n]
        first = np.ones(len(row), bool)
        first[1:] = row[1:] != row[:-1]
        out.append([int(t) for t in row[first] if t != BLANK_ID])
    return out


def greedy_ids(log_probs, lengths):
    """log_probs (B, T, V) -> B token-id lists."""
    return greedy_from_best(np.asarray(log_probs).argmax(-1), lengths)
