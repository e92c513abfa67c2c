"""Early-exit attention encoder-decoder: at every exit a CTC head and a Transformer decoder.

Per exit L the loss is ctc_weight * CTC_L + (1 - ctc_weight) * CE_L (label-smoothed
cross-entropy of the decoder), and the exits add up through the exit weighting, so with
`equal` weighting and ctc_weight 0.3 the training loss is the paper's 0.3 * sum CTC + 0.7 * sum CE.
The CTC heads keep every CTC tool working (greedy decoding, entropy, dynamic exits); joint
CTC/attention beam search per exit is in decode/joint_beam.py, attention rescoring of a CTC
N-best in decode/attention_rescoring.py (scored by `hypothesis_log_probs`).
"""

import torch
from espnet.nets.pytorch_backend.nets_utils import th_accuracy
from espnet.nets.pytorch_backend.transformer.add_sos_eos import add_sos_eos
from espnet.nets.pytorch_backend.transformer.label_smoothing_loss import LabelSmoothingLoss
from espnet2.asr.decoder.transformer_decoder import TransformerDecoder

from ee_asr.common.errors import UserError
from ee_asr.models.ctc_ee import EarlyExitCTC, float32_region

IGNORE_ID = -1  # the padding value of token batches (data/dataset.py)
DECODER_DEFAULTS = {"attention_heads": 4, "linear_units": 2048, "num_blocks": 1, "dropout_rate": 0.1}


class EarlyExitAED(EarlyExitCTC):
    def __init__(self, vocab_size, encoder, normalize=None, specaug=None, shared_head=False,
                 exit_weighting="equal", ctc_dropout=0.0, ctc_weight=0.3, lsm_weight=0.1,
                 shared_decoder=False, decoder_conf=None):
        super().__init__(vocab_size, encoder, normalize, specaug, shared_head, exit_weighting, ctc_dropout)
        if not 0.0 <= ctc_weight < 1.0:
            raise UserError(f"model_conf.ctc_weight must be in [0, 1), not {ctc_weight}")
        conf = {**DECODER_DEFAULTS, **(decoder_conf or {})}
        # flash attention is off: decoding and the CPU path must give the same numbers
        conf["use_flash_attn"] = False
        try:
            n = 1 if shared_decoder else len(self.exit_layers)
            self.decoders = torch.nn.ModuleList(
                TransformerDecoder(vocab_size, encoder.output_size(), **conf) for _ in range(n))
        except TypeError as e:
            raise UserError(f"model_conf.decoder_conf: {e}") from None
        self.ctc_weight = ctc_weight
        self.sos = self.eos = vocab_size - 1
        self.criterion = LabelSmoothingLoss(vocab_size, IGNORE_ID, lsm_weight, normalize_length=False)

    def decoder(self, exit_index):
        return self.decoders[exit_index if len(self.decoders) > 1 else 0]

    def forward(self, feats, feat_lens, tokens, token_lens):
        """Return (loss, stats): `loss_exit{L}` (the exit's joint loss), `ctc_exit{L}`, `att_exit{L}`, `acc_exit{L}`."""
        feats, feat_lens = self.prepare(feats, feat_lens)
        outs, olens = self.encoder(feats, feat_lens)
        ys_in, ys_out = add_sos_eos(tokens, self.sos, self.eos, IGNORE_ID)
        ys_in_lens = token_lens + 1
        ctcs = self.exit_ctc_losses(outs, olens, tokens, token_lens)  # one batched call (ctc_ee.py)
        losses, stats = [], {}
        for i, ((layer, hidden), ctc) in enumerate(zip(outs, ctcs)):
            dec_out, _ = self.decoder(i)(hidden, olens, ys_in, ys_in_lens)
            with float32_region(dec_out):  # log-softmax and label smoothing in float32 under autocast
                dec_out = dec_out.float()
                att = self.criterion(dec_out, ys_out)
            loss = self.ctc_weight * ctc + (1.0 - self.ctc_weight) * att
            losses.append(loss)
            stats[f"loss_exit{layer}"] = loss.detach()
            stats[f"ctc_exit{layer}"] = ctc.detach()
            stats[f"att_exit{layer}"] = att.detach()
            stats[f"acc_exit{layer}"] = torch.tensor(th_accuracy(
                dec_out.detach().view(-1, dec_out.size(-1)), ys_out, IGNORE_ID))
        loss = self.weighting(losses)
        stats["loss"] = loss.detach()
        return loss, stats

    def hypothesis_ys(self, hyps):
        """Token-id lists -> (ys (N, U+2): <sos> tokens <eos>, padded with <eos>; ys_lens (N,):
        tokens + 1, the teacher-forced steps of each, <eos> included), as tensors; the torch-free
        runtime builds the same with exits/rescore_rule.hypothesis_ys."""
        longest = max((len(h) for h in hyps), default=0)
        ys = torch.full((len(hyps), longest + 2), self.eos, dtype=torch.long)
        ys[:, 0] = self.sos
        for n, h in enumerate(hyps):
            ys[n, 1:len(h) + 1] = torch.as_tensor(list(h), dtype=torch.long)
        return ys, torch.tensor([len(h) + 1 for h in hyps], dtype=torch.long)

    @torch.no_grad()
    def hypothesis_log_probs(self, exit_index, hidden, lengths, hyp_utt, ys, ys_lens):
        """Teacher-forced log p_att(hypothesis + <eos> | exit) of N hypotheses in one decoder pass.

        hidden (B, T, D), lengths (B,): the exit's normalised hidden states; hyp_utt (N,): the
        batch row each hypothesis belongs to; ys, ys_lens: from `hypothesis_ys`. Returns (N,)."""
        memory, mem_lens = hidden[hyp_utt], lengths[hyp_utt]
        dev = hidden.device
        ys, ys_lens = ys.to(dev), ys_lens.to(dev)
        logits, _ = self.decoder(exit_index)(memory, mem_lens, ys[:, :-1], ys_lens)
        steps = logits.log_softmax(-1).gather(-1, ys[:, 1:, None]).squeeze(-1)
        valid = torch.arange(steps.size(1), device=dev)[None, :] < ys_lens[:, None]
        return (steps * valid).sum(-1)
