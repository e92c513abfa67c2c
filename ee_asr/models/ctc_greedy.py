"""Greedy CTC search: best token per frame, repeats merged, blanks dropped."""

import torch

BLANK_ID = 0


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor):
    """log_probs (B, T, V) -> list of token-id lists, one per utterance."""
    return greedy_from_best(log_probs.argmax(-1), lengths)


def greedy_from_best(best: torch.Tensor, lengths: torch.Tensor):
    """The same from the best token per frame (B, T), for callers that have it already (max() also
    gives maxprob): one .tolist() instead of per-element tensor reads."""
    out = []
    for row, n in zip(best.cpu().tolist(), lengths.cpu().tolist()):
        ids, prev = [], None
        for t in row[:n]:
            if t != prev and t != BLANK_ID:
                ids.append(t)
            prev = t
        out.append(ids)
    return out
