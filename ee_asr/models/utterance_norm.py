"""Per-utterance mean (and variance) normalisation over time, ignoring padded frames.

Used for raw waveforms (wav2vec2 expects zero mean, unit variance per utterance) in place of
espnet's UtteranceMVN, whose padding mask is quadratic in the input length (models/masks.py)
and whose variance counts padded frames (so a batch normalises differently from one utterance).
"""

import torch

from ee_asr.models.masks import valid_mask


class UtteranceNorm(torch.nn.Module):
    def __init__(self, norm_means: bool = True, norm_vars: bool = False, eps: float = 1.0e-20):
        super().__init__()
        self.norm_means, self.norm_vars, self.eps = norm_means, norm_vars, eps

    def forward(self, x, lengths):
        """x (B, T, D), lengths (B,) -> (normalised x with zeros in the padding, lengths)."""
        mask = valid_mask(lengths.to(x.device), x.size(1))[:, :, None].to(x.dtype)
        n = lengths.to(x.device, x.dtype)[:, None, None]
        mean = (x * mask).sum(1, keepdim=True) / n
        if self.norm_means:
            x = x - mean
        if self.norm_vars:
            centred = (x if self.norm_means else x - mean) * mask
            std = ((centred ** 2).sum(1, keepdim=True) / n).clamp_min(self.eps).sqrt()
            x = x / std
        return x * mask, lengths
