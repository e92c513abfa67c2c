"""Padding masks from lengths. espnet's make_pad_mask builds a T x T triangular matrix on its
way, which is quadratic in the input length (ruinous for raw 16 kHz audio)."""

import torch


def valid_mask(lengths, max_len):
    """(B, T) bool, True on the frames within each length."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
