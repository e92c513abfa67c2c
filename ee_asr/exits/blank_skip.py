"""Blank frames dropped above an exit (frame-level CTC blank skipping, arXiv 2401.02046), for any
backend of the exit engine (exits/engine.py) and under any exit policy.

After an exit named in `after_layers`, the frames whose blank posterior there is above
`threshold` leave the sequence the layers above see: self-attention and convolution run over
the kept frames only. The deeper exits' log-probs are scattered back to the full length, the
dropped frames as certain blanks, so the engine, its scores, policies and searches see ordinary
full-length sequences with the full lengths.

Positions: the kept frames are treated as contiguous. The relative positional embedding of T'
kept frames is the central 2T'-1 rows of the (1, 2T-1, d) table (`central_positions`), exactly
what the encoder's front gives a sequence of T' frames; keeping the true distances between kept
frames would need an embedding per pair of frames, which espnet's attention does not take.

A backend that supports it has, besides the engine's interface,
    keep_frames(state, order, lengths) -> state    keep frames `order` (B, T') of each row, in that
                                                   order, the first `lengths` (B,) of them valid
(decode/torch_backend.py, deploy/onnx_backend.py). numpy only: the ONNX runtime uses it too.
"""

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ee_asr.common.errors import UserError
from ee_asr.data.tokenizer import BLANK_ID

# log p of every other token on a dropped frame: exp() is 0 in float32 and, unlike -inf, times 0
# it is 0, so the entropy of a dropped frame is 0 and not NaN
OTHER_TOKENS_LOGP = -1e4


def central_positions(pos_emb, frames):
    """The (1, 2*frames-1, d) relative positional embedding inside a longer one (numpy or torch)."""
    centre = (pos_emb.shape[1] - 1) // 2
    return pos_emb[:, centre - frames + 1:centre + frames]


@dataclass
class SkipState:
    """The backend's state over the kept frames, and where they sit in the full sequence."""

    inner: object
    index: Optional[np.ndarray] = None  # (B, T') full-sequence frame of each kept frame; None: all kept
    lengths: Optional[np.ndarray] = None  # (B,) full lengths, once frames were dropped
    frames: int = 0  # the full padded length, once frames were dropped
    compact: Optional[tuple] = None  # this exit's (log_probs, lengths) over the kept frames, once asked for


def keep_mask(blank_logp, lengths, threshold):
    """(B, T) exit log p(blank), lengths -> (B, T) bool: the valid frames kept, at least one per row
    (its least blank frame), so that every utterance still reaches the layers above."""
    valid = np.arange(blank_logp.shape[1])[None, :] < lengths[:, None]
    keep = valid & (blank_logp <= math.log(threshold))
    empty = np.flatnonzero(~keep.any(1))
    keep[empty, np.where(valid, blank_logp, np.inf)[empty].argmin(1)] = True
    return keep


class BlankSkipping:
    """A backend that wraps `backend` and drops the blank frames after the exits at `after_layers`."""

    def __init__(self, backend, after_layers, threshold):
        after_layers = sorted({int(a) for a in after_layers})
        bad = [a for a in after_layers if a not in backend.exit_layers[:-1]]
        if bad:
            raise UserError(f"blank skipping after layer {bad[0]}: not an exit below the last "
                            f"(exits: {backend.exit_layers})")
        if not threshold > 0:
            raise UserError(f"blank skipping threshold must be > 0 (a blank posterior; > 1 drops nothing), "
                            f"not {threshold}")
        if not hasattr(backend, "keep_frames"):
            raise UserError(f"{type(backend).__name__} cannot drop frames (no keep_frames)")
        self.backend, self.after_layers, self.threshold = backend, after_layers, float(threshold)
        self.exit_layers = backend.exit_layers

    @property
    def blank_skip(self):
        """[after_layers, threshold], as outputs record it."""
        return [self.after_layers, self.threshold]

    def __getattr__(self, name):
        # everything else (min_input_frames, check_frames, exit_classifier, model) is the backend's
        return getattr(self.__dict__["backend"], name)

    def start(self, inputs):
        return SkipState(self.backend.start(inputs))

    def advance(self, state, exit_index):
        if exit_index > 0 and self.exit_layers[exit_index - 1] in self.after_layers:
            state = self._drop(state, exit_index - 1)
        return SkipState(self.backend.advance(state.inner, exit_index), state.index, state.lengths, state.frames)

    def _drop(self, state, exit_index):
        logp, lengths = state.compact or self.backend.log_probs(state.inner, exit_index)
        keep = keep_mask(np.asarray(logp[..., BLANK_ID]), np.asarray(lengths), self.threshold)
        if state.index is None and keep.sum() == np.asarray(lengths).sum():
            return state  # nothing dropped: the state as it is, so results are exactly those without skipping
        kept = keep.sum(1)
        # each row's kept frames first, in order (a stable sort of "dropped"), cut to the longest row's
        order = np.argsort(~keep, axis=1, kind="stable")[:, :int(kept.max())]
        full = np.broadcast_to(np.arange(keep.shape[1]), keep.shape) if state.index is None else state.index
        return SkipState(self.backend.keep_frames(state.inner, order, kept), np.take_along_axis(full, order, 1),
                         np.asarray(lengths) if state.lengths is None else state.lengths,
                         state.frames or keep.shape[1])

    def log_probs(self, state, exit_index):
        logp, lengths = state.compact = self.backend.log_probs(state.inner, exit_index)
        if state.index is None:
            return logp, lengths
        full = np.full((len(logp), state.frames, logp.shape[-1]), OTHER_TOKENS_LOGP, np.float32)
        full[..., BLANK_ID] = 0.0
        valid = np.arange(logp.shape[1])[None, :] < np.asarray(lengths)[:, None]
        full[np.nonzero(valid)[0], state.index[valid]] = logp[valid]
        return full, state.lengths

    def hidden(self, state):
        """The kept frames' hidden states (an attention decoder attends over those)."""
        return self.backend.hidden(state.inner)

    def select(self, state, rows):
        compact = None if state.compact is None else tuple(np.asarray(c)[rows] for c in state.compact)
        return SkipState(self.backend.select(state.inner, rows), None if state.index is None else state.index[rows],
                         None if state.lengths is None else state.lengths[rows], state.frames, compact)


def with_blank_skipping(backend, after_layers, threshold):
    """`backend` itself when `threshold` is None, else wrapped to drop blank frames."""
    if threshold is None:
        return backend
    return BlankSkipping(backend, after_layers, threshold)
