"""Greedy CTC search: best token per frame, repeats merged, blanks dropped."""

import torch

BLANK_ID = 0


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor):
    """log_probs (B, T, V) -> list of token-id lists, one per utterance."""
    best = log_probs.argmax(-1).cpu()
    out = []
    for row, n in zip(best, lengths.cpu().tolist()):
        row = torch.unique_consecutive(row[:n])
        out.append([int(t) for t in row if t != BLANK_ID])
    return out
