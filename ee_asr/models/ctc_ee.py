"""Early-exit CTC model: feature normalisation, SpecAugment, an exit encoder and a CTC head per exit."""

import math

import torch
from espnet2.asr.ctc import CTC

from ee_asr.common.errors import UserError
from ee_asr.models.exit_weighting import ExitWeighting
from ee_asr.models.stacked_ctc import can_fuse, stacked_ctc_losses


def float32_region(like):
    """Autocast off (mixed-precision training) for the ops that follow, on `like`'s device."""
    return torch.autocast(like.device.type, enabled=False)


class EarlyExitCTC(torch.nn.Module):
    def __init__(self, vocab_size, encoder, normalize=None, specaug=None, shared_head=False,
                 exit_weighting="equal", ctc_dropout=0.0, blank_skip=None):
        """`blank_skip`: [exit layer, threshold] to train as exits/blank_skip.py decodes: the frames
        whose blank posterior at that exit is above the threshold are dropped for the layers above,
        whose exits' CTC losses are over the kept frames (2401.02046 trains this way)."""
        super().__init__()
        self.vocab_size = vocab_size
        self.normalize = normalize
        self.specaug = specaug
        self.encoder = encoder
        self.exit_layers = list(encoder.exit_layers)
        n_heads = 1 if shared_head else len(self.exit_layers)
        self.ctc_heads = torch.nn.ModuleList(
            CTC(vocab_size, encoder.output_size(), dropout_rate=ctc_dropout) for _ in range(n_heads))
        self.weighting = ExitWeighting(self.exit_layers, exit_weighting)
        # the exits' CTC losses in one stacked call (models/stacked_ctc.py): None on a GPU only
        # (on a CPU it does not pay), True always, False never (espnet's CTC module per exit)
        self.stack_exits = None
        self.blank_skip = None if blank_skip is None else (int(blank_skip[0]), float(blank_skip[1]))
        if self.blank_skip and (self.blank_skip[0] not in self.exit_layers[:-1] or not self.blank_skip[1] > 0):
            raise UserError(f"model_conf.blank_skip {list(blank_skip)}: needs [an exit below the last, a "
                            f"threshold > 0] (exits: {self.exit_layers})")

    def head(self, exit_index):
        return self.ctc_heads[exit_index if len(self.ctc_heads) > 1 else 0]

    def prepare(self, feats, feat_lens):
        """Normalisation always; SpecAugment only while training."""
        if self.normalize is not None:
            # espnet's GlobalMVN normalises in place when no gradient is needed; a copy keeps
            # the caller's features intact for a second pass (benchmarks, one-by-one checks).
            feats, feat_lens = self.normalize(feats.clone(), feat_lens)
        if self.specaug is not None and self.training:
            feats, feat_lens = self.specaug(feats, feat_lens)
        return feats, feat_lens

    def forward(self, feats, feat_lens, tokens, token_lens):
        """Return (loss, stats) with `loss_exit{L}` for every exit; losses are per utterance."""
        feats, feat_lens = self.prepare(feats, feat_lens)
        if self.blank_skip:
            outs = self.skipping_exit_outputs(feats, feat_lens)
            losses = torch.stack([self.head(i)(h, n, tokens, token_lens) for i, (_, h, n) in enumerate(outs)])
        else:
            outs, olens = self.encoder(feats, feat_lens)
            losses = self.exit_ctc_losses(outs, olens, tokens, token_lens)
        stats = {f"loss_exit{out[0]}": loss.detach() for out, loss in zip(outs, losses)}
        loss = self.weighting(losses)
        stats["loss"] = loss.detach()
        return loss, stats

    def skipping_exit_outputs(self, feats, feat_lens):
        """[(layer, normalised hidden, lengths)] of every exit, the blank frames at exit
        blank_skip[0] dropped for the layers above it."""
        enc, (after, threshold) = self.encoder, self.blank_skip
        state, outs = enc.start(feats, feat_lens), []
        for i, layer in enumerate(enc.exit_layers):
            state = enc.advance(state, layer)
            outs.append((layer, enc.exit_output(state), state.lengths))
            if layer == after:
                with torch.no_grad():
                    blank = self.head(i).log_softmax(outs[-1][1])[..., 0]
                state = state.keep_frames(*kept_frames(blank, state.masks[:, 0], threshold))
        return outs

    def exit_ctc_losses(self, outs, olens, tokens, token_lens):
        """Per-exit CTC losses (N,) of [(layer, hidden), ...], in float32 also under autocast:
        CTC adds log probabilities over hundreds of frames, more than a bfloat16 mantissa holds."""
        heads = list(self.ctc_heads)[:len(outs)]  # a shared head is a list of one
        stack = outs[0][1].is_cuda if self.stack_exits is None else self.stack_exits
        with float32_region(outs[0][1]):
            hiddens = [h.float() for _, h in outs]
            if stack and can_fuse(heads):
                return stacked_ctc_losses(heads, hiddens, olens, tokens, token_lens)
            return torch.stack([self.head(i)(h, olens, tokens, token_lens) for i, h in enumerate(hiddens)])

    @torch.no_grad()
    def exit_hidden(self, feats, feat_lens, max_layers=None):
        """One encoder pass; [(layer, normalised hidden (B, T, D)), ...] and output lengths."""
        feats, feat_lens = self.prepare(feats, feat_lens)
        return self.encoder(feats, feat_lens, max_layers=max_layers)

    @torch.no_grad()
    def exit_log_probs(self, feats, feat_lens, max_layers=None):
        """One encoder pass; [(layer, CTC log_probs (B, T, V)), ...] and output lengths."""
        outs, olens = self.exit_hidden(feats, feat_lens, max_layers)
        return [(layer, self.head(i).log_softmax(h)) for i, (layer, h) in enumerate(outs)], olens


def kept_frames(blank_logp, valid, threshold):
    """Torch twin of exits/blank_skip.keep_mask, for training: (B, T) exit log p(blank) and valid
    frames -> (index (B, T') of the kept frames in order, their counts (B,)); the least blank frame
    of a row whose frames would all go is kept."""
    keep = valid & (blank_logp <= math.log(threshold))
    least = blank_logp.masked_fill(~valid, math.inf).argmin(1)
    keep[torch.arange(keep.size(0)), least] |= ~keep.any(1)
    counts = keep.sum(1)
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices
    return order[:, :int(counts.max())], counts
