"""The exact limit of the N-best posterior: p(hypothesis | x) under CTC, from one batched CTC forward.

The paper's confidence is the best hypothesis' share of the N-best's probability,
p(best) / sum_k p(hyp_k). As K grows the denominator tends to the sum over all label
sequences, which is 1 under CTC, so the share tends to p(best | x) itself: the CTC sequence
posterior of the hypothesis, summed over all its alignments. That is exp(-ctc_loss) of the
hypothesis as target, one batched call for the whole exit on CPU or GPU, no beam search.
It is scored on the greedy hypothesis (the decoder's answer), which is the best label sequence
in almost every case; when it is not, it is a lower bound of p(best | x).
"""

import torch
import torch.nn.functional as F

BLANK = 0


def sequence_posterior(log_probs: torch.Tensor, lengths: torch.Tensor, hyps):
    """log_probs (B, T, V), lengths (B,), hyps: B token-id lists -> (B,) tensor of p(hyp | x)."""
    b = log_probs.size(0)
    if b == 0:
        return log_probs.new_zeros(0)
    target_lens = torch.tensor([len(h) for h in hyps], dtype=torch.long)
    targets = torch.zeros(b, max(1, int(target_lens.max())), dtype=torch.long)
    for i, h in enumerate(hyps):
        targets[i, : len(h)] = torch.tensor(h, dtype=torch.long)
    device = log_probs.device
    nll = F.ctc_loss(log_probs.float().transpose(0, 1), targets.to(device), lengths.to(device).long(),
                     target_lens.to(device), blank=BLANK, reduction="none", zero_infinity=False)
    return torch.exp(-nll)


def blank_share(log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B,) share of an utterance's frames whose most probable token is the blank."""
    mask = torch.arange(log_probs.size(1), device=log_probs.device)[None, :] < lengths[:, None].to(log_probs.device)
    is_blank = (log_probs.argmax(-1) == BLANK) & mask
    return is_blank.sum(1).float() / lengths.to(log_probs.device).clamp(min=1).float()
