"""The traceable pieces of an early-exit CTC model (Conformer or Wav2Vec2 encoder): one module per exit segment.

Segment 1 runs feature normalisation, the subsampling front, the blocks up to the first exit,
and that exit's norm and CTC head; segment k runs the blocks from exit k-1 to exit k and its
head. Between segments travel the raw (un-normalised) block output, the relative positional
embedding and the output lengths, so a runtime can stop after any segment.

What the PyTorch modules do that a traced graph must not (they stay as they are; the export
works on a copy with these parts replaced, and tests check the outputs are unchanged):
- espnet's GlobalMVN keeps float64 statistics and normalises in place: here float32, out of
  place, the padding zeroed as GlobalMVN does.
- espnet's RelPositionalEncoding slices a precomputed table (5000 positions): traced, the table
  becomes a constant of 2 x 5000 x d floats. `InGraphRelPositionalEncoding` computes the same
  sines and cosines from the input length in the graph, so no length limit is baked in.
- the length checks of `ConformerEEEncoder.start` read tensor values; `front` has none, and the
  runtime checks lengths from the manifest (`min_frames`, `max_frames`) before running a graph.
"""

import copy
import math

import torch
from espnet2.layers.global_mvn import GlobalMVN

from ee_asr.common.errors import UserError
from ee_asr.models.conformer_ee import ConformerEEEncoder
from ee_asr.models.ctc_ee import EarlyExitCTC
from ee_asr.models.exit_encoder import EncoderState
from ee_asr.models.masks import valid_mask
from ee_asr.models.utterance_norm import UtteranceNorm
from ee_asr.models.wav2vec2_ee import Wav2Vec2EEEncoder


class InGraphRelPositionalEncoding(torch.nn.Module):
    """espnet's RelPositionalEncoding ("latest") in eval mode, computed from the input length.

    Row j of the (1, 2T-1, d) embedding is the relative position T-1-j: [sin(p w), cos(p w)]
    interleaved, w = 10000^(-2i/d). The positions and products are the same float32 numbers
    espnet's table holds, so the embeddings agree up to the sin/cos implementations (~1e-7).
    """

    def __init__(self, d_model):
        super().__init__()
        self.d_model, self.xscale = d_model, math.sqrt(d_model)
        self.register_buffer("div_term", torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model)), persistent=False)

    def forward(self, x):
        # 0..T-1 from a cumulative sum over the time axis: a dynamic length with no size arithmetic
        pos = torch.ones_like(x[0, :, 0]).cumsum(0) - 1.0
        rel = torch.cat([torch.flip(pos, [0]), -pos[1:]])  # T-1, ..., 0, -1, ..., -(T-1)
        angle = rel[:, None] * self.div_term[None, :]
        pe = torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(1, -1, self.d_model)
        return x * self.xscale, pe


def _float32_norm(normalize):
    if normalize is None or isinstance(normalize, UtteranceNorm):
        return normalize
    if isinstance(normalize, GlobalMVN):
        return Float32GlobalMVN(normalize)
    raise UserError(f"cannot export feature normalisation {type(normalize).__name__}")


class Float32GlobalMVN(torch.nn.Module):
    def __init__(self, mvn):
        super().__init__()
        self.norm_means, self.norm_vars = mvn.norm_means, mvn.norm_vars
        self.register_buffer("mean", mvn.mean.detach().float().clone())
        self.register_buffer("std", mvn.std.detach().float().clone())

    def forward(self, x, lengths):
        if self.norm_means:
            x = x - self.mean
        x = x * valid_mask(lengths, x.size(1))[:, :, None].to(x.dtype)
        if self.norm_vars:
            x = x / self.std
        return x, lengths


def exportable_copy(model):
    """A deep copy of an eval-mode EarlyExitCTC (or the CTC side of an EarlyExitAED) with a Conformer
    or Wav2Vec2 encoder, its untraceable parts replaced."""
    if not isinstance(model, EarlyExitCTC) or not isinstance(model.encoder, (ConformerEEEncoder, Wav2Vec2EEEncoder)):
        raise UserError("ONNX export handles early-exit CTC models (model: ctc_ee or aed_ee, encoder: conformer_ee "
                        f"or wav2vec2_ee), not {type(model).__name__} with {type(model.encoder).__name__}")
    model = copy.deepcopy(model).eval()
    model.normalize = _float32_norm(model.normalize)
    if isinstance(model.encoder, Wav2Vec2EEEncoder):
        return model  # positions come from a convolution: nothing to replace
    embed = model.encoder.embed
    # espnet keeps the positional encoding in `pos_enc` (conv2d6/8) or last in `out` (the others)
    has_attr = hasattr(embed, "pos_enc")
    pos_enc = embed.pos_enc if has_attr else embed.out[-1]
    if type(pos_enc).__name__ != "RelPositionalEncoding":
        raise UserError(f"ONNX export handles rel_pos encoders, not {type(pos_enc).__name__}")
    replacement = InGraphRelPositionalEncoding(pos_enc.d_model)
    if has_attr:
        embed.pos_enc = replacement
    else:
        embed.out[-1] = replacement
    return model


def has_pos_emb(model):
    """Conformer segments pass a relative positional embedding along; Wav2Vec2 ones do not."""
    return isinstance(model.encoder, ConformerEEEncoder)


class FirstSegment(torch.nn.Module):
    """(feats (B, T, F), feats_lens (B,)) -> (log_probs, hidden, [pos_emb,] lengths) at the first exit."""

    def __init__(self, model):
        super().__init__()
        self.model, self.layer = model, model.encoder.exit_layers[0]

    def forward(self, feats, feats_lens):
        m, enc = self.model, self.model.encoder
        if m.normalize is not None:
            feats, feats_lens = m.normalize(feats, feats_lens)
        state = enc.advance(enc.front(feats, feats_lens), self.layer)
        log_probs = m.head(0).log_softmax(enc.exit_output(state))
        if isinstance(state.x, tuple):
            hidden, pos_emb = state.x
            return log_probs, hidden, pos_emb, state.lengths
        return log_probs, state.x, state.lengths


class NextSegment(torch.nn.Module):
    """(hidden, [pos_emb,] lengths) after exit k-1 -> (log_probs, hidden) at exit k."""

    def __init__(self, model, exit_index):
        super().__init__()
        self.model, self.exit_index = model, exit_index
        self.start_layer = model.encoder.exit_layers[exit_index - 1]
        self.layer = model.encoder.exit_layers[exit_index]

    def forward(self, hidden, *rest):
        enc = self.model.encoder
        lengths = rest[-1]
        x = (hidden, rest[0]) if len(rest) == 2 else hidden
        masks = valid_mask(lengths, hidden.size(1))[:, None, :]
        state = enc.advance(EncoderState(x, masks, self.start_layer), self.layer)
        return self.model.head(self.exit_index).log_softmax(enc.exit_output(state)), state.hidden


# Kaldi's log-energy floor, log(FLT_EPSILON): bins of (near-)silent frames sit there
LOG_FLOOR = math.log(1.1920928955078125e-07)


class SingleExitGraph(torch.nn.Module):
    """(x (N, T, F), x_lens (N,)) -> (log_probs, log_probs_len) at one exit: sherpa-onnx's
    offline zipformer-CTC interface. `feature_offset` is added to the features first (sherpa
    computes fbank from samples in [-1, 1], ee-asr from 16-bit sample values: 2 ln 32768 apart),
    except to bins at Kaldi's floor: digital silence is floored at either scale (on the demo's
    test audio this leaves 0.9% of bins different instead of 6.5%)."""

    def __init__(self, model, exit_index, feature_offset=0.0):
        super().__init__()
        self.model, self.exit_index, self.feature_offset = model, exit_index, float(feature_offset)
        self.layer = model.encoder.exit_layers[exit_index]

    def forward(self, x, x_lens):
        m, enc = self.model, self.model.encoder
        if self.feature_offset:
            x = torch.where(x <= LOG_FLOOR + 1e-4, x, x + self.feature_offset)
        if m.normalize is not None:
            x, x_lens = m.normalize(x, x_lens)
        state = enc.advance(enc.front(x, x_lens), self.layer)
        return m.head(self.exit_index).log_softmax(enc.exit_output(state)), state.lengths
