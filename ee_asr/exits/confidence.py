"""Per-exit confidence scores computed from CTC frame posteriors.

For an exit's log-posteriors log p_t(v) over T frames and V tokens:
- entropy  = (1/T) * sum_t H(p_t) / log V, with H(p) = -sum_v p(v) log p(v); in [0, 1],
  0 when every frame is certain, 1 when every frame is uniform.
- maxprob  = (1/T) * sum_t max_v p_t(v); in (0, 1].
"""

import math

import torch


def entropy_score(log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """log_probs (B, T, V), lengths (B,) -> (B,) normalised mean frame entropy."""
    ent = -(log_probs.exp() * log_probs).sum(-1) / math.log(log_probs.size(-1))
    return _masked_mean(ent, lengths)


def maxprob_score(log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return _masked_mean(log_probs.max(-1).values.exp(), lengths)


def _masked_mean(values, lengths):
    mask = torch.arange(values.size(1), device=values.device)[None, :] < lengths[:, None].to(values.device)
    return (values * mask).sum(1) / lengths.to(values.device).clamp(min=1)
