"""The CTC losses of every exit in one batched computation, for GPUs.

espnet's CTC module per exit costs, on a GPU, a dozen small kernel launches per exit (dropout,
linear, transpose, log-softmax, CTC forward, and backward the same way). Here the exits are
stacked: one head (one linear for a shared head, one batched matmul for per-exit heads) and
one CTC call over the exits concatenated along the batch axis, time-major so that nothing of
vocabulary size is copied, with log-softmax and CTC fused in one autograd function: torch's
CTC backward already returns the gradient with respect to the logits of a log-softmax
(exp(log p) minus the occupancies, as in Graves' paper), so log-softmax's own backward (which
would subtract softmax times a sum that is zero) is skipped.
On a CPU none of this pays (measured with one thread, thread CPU time: the early-exit step
took the same time with espnet's loop and with this, at the demo and the paper shapes; a
stacked head alone was slower, its tensors outgrowing the caches), so there the model keeps
espnet's module per exit. The per-exit losses are espnet CTC's (sum over the batch / batch
size, zero_infinity as set): tests/test_stacked_ctc.py checks losses and gradients.
"""

import torch
import torch.nn.functional as F


class LogSoftmaxCTC(torch.autograd.Function):
    """CTC loss per utterance (reduction none) of log_softmax(logits), logits (T, B, V)."""

    @staticmethod
    def forward(ctx, logits, targets, in_lens, tgt_lens, zero_infinity):
        lp = logits.float().log_softmax(-1)
        # lengths as int lists: the IntArrayRef overloads exist on every device
        in_lens, tgt_lens = in_lens.tolist(), tgt_lens.tolist()
        nll, log_alpha = torch.ops.aten._ctc_loss(lp, targets, in_lens, tgt_lens, 0, zero_infinity)
        ctx.save_for_backward(lp, targets, nll, log_alpha)
        ctx.lens, ctx.zero_infinity, ctx.dtype = (in_lens, tgt_lens), zero_infinity, logits.dtype
        return torch.where(torch.isinf(nll), torch.zeros_like(nll), nll) if zero_infinity else nll

    @staticmethod
    def backward(ctx, grad):
        lp, targets, nll, log_alpha = ctx.saved_tensors
        g = torch.ops.aten._ctc_loss_backward(grad.contiguous(), lp, targets, *ctx.lens, nll, log_alpha,
                                              0, ctx.zero_infinity)
        return g.to(ctx.dtype), None, None, None, None


def can_fuse(heads):
    # the fused form reproduces espnet's builtin CTC only; anything else keeps espnet's module
    return len(heads) > 0 and all(h.ctc_type == "builtin" and h.reduce and isinstance(h.ctc_loss, torch.nn.CTCLoss)
                                  for h in heads)


def _targets(ys_pad, ys_lens):
    # as espnet passes them: each utterance's tokens concatenated
    return torch.cat([ys_pad[i, :n] for i, n in enumerate(ys_lens)])


def _dropout(head, hidden):
    # espnet's CTC drops out in eval mode too (F.dropout's default): so do these, for equal losses
    return F.dropout(hidden, p=head.dropout_rate) if head.dropout_rate > 0.0 else hidden


def stacked_ctc_losses(heads, hiddens, hlens, ys_pad, ys_lens):
    """hiddens: N tensors (B, T, D), one per exit; heads: one per exit or one shared -> losses (N,)."""
    n, (b, t, d) = len(hiddens), hiddens[0].shape
    if heads[0].dropout_rate > 0.0:
        hiddens = [_dropout(heads[0], h) for h in hiddens]
    hidden = torch.stack(list(hiddens)).permute(2, 0, 1, 3).reshape(t, n, b, d)  # (T, N, B, D)
    if len(heads) == 1:
        logits = heads[0].ctc_lo(hidden)
    else:
        weight = torch.stack([h.ctc_lo.weight for h in heads])  # (N, V, D)
        bias = torch.stack([h.ctc_lo.bias for h in heads])  # (N, V)
        logits = torch.einsum("tnbd,nvd->tnbv", hidden, weight) + bias[None, :, None, :]
    logits = logits.reshape(t, n * b, -1)
    loss = LogSoftmaxCTC.apply(logits, _targets(ys_pad, ys_lens).repeat(n), hlens.repeat(n), ys_lens.repeat(n),
                               heads[0].ctc_loss.zero_infinity)
    return (loss.view(n, b).sum(1) / b).to(hiddens[0].dtype)
