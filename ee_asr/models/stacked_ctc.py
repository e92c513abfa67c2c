"""The CTC losses of every exit in one batched computation.

A loop over exits calls, per exit, dropout, the head's linear layer, log-softmax and CTC: six
small calls each where one would do. Here the exits' hidden states are stacked (N, B, T, D),
the heads' weights too (one batched matmul; a shared head is a single linear), and one CTC
call runs over the N*B rows (exits concatenated along the batch axis, targets repeated). The
per-exit losses are espnet CTC's (`builtin`: sum over the batch / batch size, zero_infinity),
so the training loss and its gradients are those of the per-exit loop (tests/test_stacked_ctc.py).
"""

import torch
import torch.nn.functional as F


def _check_heads(heads):
    for h in heads:
        # the batched form reproduces espnet's builtin CTC only; anything else keeps the loop
        if h.ctc_type != "builtin" or not h.reduce or not isinstance(h.ctc_loss, torch.nn.CTCLoss):
            return False
    return True


def can_stack(heads):
    return len(heads) > 0 and _check_heads(heads)


def stacked_logits(heads, hidden):
    """hidden (N, B, T, D) -> logits (N, B, T, V); one head per exit, or one shared head."""
    n, b, t, d = hidden.shape
    if len(heads) == 1:
        return heads[0].ctc_lo(hidden)
    weight = torch.stack([h.ctc_lo.weight for h in heads])  # (N, V, D)
    bias = torch.stack([h.ctc_lo.bias for h in heads])  # (N, V)
    out = torch.baddbmm(bias.unsqueeze(1), hidden.reshape(n, b * t, d), weight.transpose(1, 2))
    return out.view(n, b, t, -1)


def stacked_ctc_losses(heads, hiddens, hlens, ys_pad, ys_lens):
    """hiddens: N tensors (B, T, D), one per exit -> per-exit CTC losses (N,), each as espnet's CTC."""
    hidden = torch.stack(list(hiddens))
    n, b = hidden.shape[:2]
    p = heads[0].dropout_rate
    if p > 0.0:
        # espnet's CTC drops out in eval mode too (F.dropout's default); so does this, for equal losses
        hidden = F.dropout(hidden, p=p)
    logp = stacked_logits(heads, hidden).log_softmax(-1).float()  # (N, B, T, V)
    logp = logp.reshape(n * b, *logp.shape[2:]).transpose(0, 1)  # (T, N*B, V)
    # targets as espnet passes them: each utterance's tokens concatenated, once per exit
    ys_true = torch.cat([ys_pad[i, :l] for i, l in enumerate(ys_lens)])
    loss = F.ctc_loss(logp, ys_true.repeat(n), hlens.repeat(n), ys_lens.repeat(n), blank=0,
                      reduction="none", zero_infinity=heads[0].ctc_loss.zero_infinity)
    return (loss.view(n, b).sum(1) / b).to(hidden.dtype)
