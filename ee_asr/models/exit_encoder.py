"""What every encoder with exits shares: the state between layers, and the loop over exits.

An encoder defines `start(xs, ilens) -> EncoderState` (front end, before layer 1) and
`advance(state, to_layer) -> EncoderState` (run layers up to `to_layer`), and holds
`exit_layers` and one `exit_norms` entry per exit. Callers that must stop computing after an
exit (the exit engine: exits/engine.py, decode/torch_backend.py) drive those two themselves;
`forward` runs every exit up to a layer.
"""

from dataclasses import dataclass
from typing import Optional

import torch

from ee_asr.common.errors import UserError
from ee_asr.models.masks import valid_mask


@dataclass
class EncoderState:
    """Hidden state after `layers_done` blocks; `x` is a (hidden, pos_emb) tuple for rel-pos attention."""

    x: object
    masks: torch.Tensor
    layers_done: int

    @property
    def hidden(self):
        return self.x[0] if isinstance(self.x, tuple) else self.x

    @property
    def lengths(self):
        return self.masks.squeeze(1).sum(1)

    def select(self, index):
        """Keep only the batch rows in `index` (utterances that have not exited yet)."""
        if isinstance(self.x, tuple):
            hidden, pos = self.x
            # relative positional embeddings have batch dim 1 and are shared by all rows
            x = (hidden[index], pos if pos.size(0) == 1 else pos[index])
        else:
            x = self.x[index]
        return EncoderState(x, self.masks[index], self.layers_done)

    def keep_frames(self, index, lengths):
        """Keep frames `index` (B, T') of each row, the first `lengths` (B,) valid (blank skipping,
        exits/blank_skip.py). A relative positional embedding becomes that of T' contiguous frames:
        the central 2T'-1 rows of the (1, 2T-1, d) table, as the front gives a T'-frame input."""
        hidden = self.hidden.gather(1, index[:, :, None].expand(-1, -1, self.hidden.size(-1)))
        masks = valid_mask(lengths, index.size(1))[:, None, :]
        if not isinstance(self.x, tuple):
            return EncoderState(hidden, masks, self.layers_done)
        pos, width = self.x[1], index.size(1)
        start = (pos.size(1) + 1) // 2 - width
        return EncoderState((hidden, pos[:, start:start + 2 * width - 1]), masks, self.layers_done)


# Shorter inputs are refused by transcription in both backends (0.16 s of fbank frames, 0.1 s of
# raw samples), whatever the front could take: a fragment that short is not speech to transcribe.
TRANSCRIBE_MIN_FRAMES = 16
TRANSCRIBE_MIN_SAMPLES = 1600


def transcribe_min_frames(encoder):
    """The fewest input frames (samples for a raw-audio encoder) transcription accepts."""
    floor = TRANSCRIBE_MIN_SAMPLES if getattr(encoder, "reads_raw_audio", False) else TRANSCRIBE_MIN_FRAMES
    return max(floor, encoder.min_input_frames())


class ExitEncoder(torch.nn.Module):
    @staticmethod
    def checked_exit_layers(exit_layers, num_layers):
        """The configured exits, sorted, or a UserError: every encoder accepts the same exits."""
        layers = sorted(int(x) for x in exit_layers)
        if not layers or layers[0] < 1 or layers[-1] > num_layers or len(set(layers)) != len(layers):
            raise UserError(f"exit_layers {layers} must be distinct layers in 1..{num_layers}")
        return layers

    def accepts(self, num_frames: int) -> bool:
        """Whether an utterance of `num_frames` input frames (samples for raw audio) can be encoded."""
        raise NotImplementedError

    def min_input_frames(self) -> int:
        """The fewest input frames `check_lengths` accepts."""
        n = 1
        while not self.accepts(n):
            n += 1
        return n

    def start(self, xs: torch.Tensor, ilens: torch.Tensor) -> EncoderState:
        """The front end with its length checks (`check_lengths`, `front`: each encoder's own)."""
        self.check_lengths(xs.size(1), int(ilens.min()))
        return self.front(xs, ilens)

    def exit_output(self, state: EncoderState) -> torch.Tensor:
        """The normalised hidden state of the exit at layer `state.layers_done`."""
        return self.exit_norms[self.exit_layers.index(state.layers_done)](state.hidden)

    def forward(self, xs: torch.Tensor, ilens: torch.Tensor, max_layers: Optional[int] = None):
        """Return ([(layer, hidden), ...] for every exit up to `max_layers`, output lengths)."""
        max_layers = self.exit_layers[-1] if max_layers is None else max_layers
        state = self.start(xs, ilens)
        outs = []
        for layer in self.exit_layers:
            if layer > max_layers:
                break
            state = self.advance(state, layer)
            outs.append((layer, self.exit_output(state)))
        return outs, state.lengths
