"""Kaldi-compatible log-mel filterbanks (Kaldi's `compute-fbank` with `--snip-edges=false`, no
dither): stage 2's dump, the loader's features on the fly, transcribe and the ONNX runtime all
compute them here, so a model always sees the features it was trained on.

Written in numpy over a whole utterance at once (frames as one strided view, one batched FFT, one
matrix product for the mel banks), not frame by frame: 0.28 s of CPU per 40,000 frames of demo
utterances against 0.50 s for kaldi-native-fbank's per-frame loop (this project's CPU), which is
what the loader workers pay for every batch trained on the fly. kaldi-native-fbank stays the
reference the tests hold these numerics to (tests/test_fbank.py). No torch: the ONNX runtime
imports this too.
"""

from dataclasses import asdict, dataclass

import numpy as np

from ee_asr.common.errors import UserError

SAMPLE_RATE = 16000
PREEMPHASIS = 0.97
POVEY_POWER = 0.85  # Kaldi's default window: a Hann window raised to 0.85


def mel_scale(freq):
    return 1127.0 * np.log(1.0 + np.asarray(freq, np.float64) / 700.0)


@dataclass(frozen=True)
class FbankOptions:
    """What defines the features; written as is into an ONNX export's manifest (`fbank`)."""

    samp_freq: int = SAMPLE_RATE
    num_mel_bins: int = 80
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: that far below the Nyquist frequency, as in Kaldi
    # kaldi-native-fbank, like Kaldi, reads 16-bit integer sample values; float waves are scaled
    sample_scale: float = 32768.0
    dither: float = 0.0  # nonzero dither makes reruns differ; features must be reproducible for resume
    snip_edges: bool = False

    def __post_init__(self):
        # Fbank implements neither: refused wherever options are made, not only from a manifest
        if self.dither != 0.0 or self.snip_edges:
            raise UserError(f"only dither 0 and snip_edges false are supported, not "
                            f"dither {self.dither}, snip_edges {self.snip_edges}")

    @classmethod
    def from_spec(cls, spec):
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError(f"unknown key(s) {sorted(unknown)}")
        return cls(**spec)

    def spec(self):
        return asdict(self)


class Fbank:
    """Callable: a float waveform in [-1, 1] at `samp_freq` -> (frames, num_mel_bins) float32."""

    def __init__(self, opts=FbankOptions()):
        self.opts = opts
        self.frame_length = int(opts.samp_freq * 0.025)
        self.frame_shift = int(opts.samp_freq * 0.010)
        self.fft_size = 1 << (self.frame_length - 1).bit_length()
        n = np.arange(self.frame_length)
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (self.frame_length - 1))
        self.window = (hann ** POVEY_POWER).astype(np.float32)
        self.mel_weights = self._mel_weights()

    def _mel_weights(self):
        """(fft_size/2 + 1, bins) triangles on the mel scale, Kaldi's MelBanks (the Nyquist bin
        gets no weight, as in Kaldi)."""
        o = self.opts
        nyquist = o.samp_freq / 2
        high = nyquist + o.high_freq if o.high_freq <= 0 else o.high_freq
        if not 0 <= o.low_freq < high <= nyquist:
            raise UserError(f"fbank frequencies must satisfy 0 <= low_freq < high_freq <= {nyquist:g}, "
                            f"not low_freq {o.low_freq}, high_freq {o.high_freq}")
        if o.num_mel_bins < 1:
            raise UserError(f"{o.num_mel_bins} mel bins cannot be computed: num_mel_bins must be >= 1")
        lo, hi = mel_scale(o.low_freq), mel_scale(high)
        delta = (hi - lo) / (o.num_mel_bins + 1)
        mel = mel_scale(np.arange(self.fft_size // 2) * o.samp_freq / self.fft_size)[:, None]
        left = lo + delta * np.arange(o.num_mel_bins)[None, :]
        center, right = left + delta, left + 2 * delta
        rising, falling = (mel - left) / (center - left), (right - mel) / (right - center)
        weights = np.where((mel > left) & (mel < right), np.minimum(rising, falling), 0.0)
        empty = np.flatnonzero(weights.sum(0) == 0)
        if len(empty):
            raise UserError(f"{o.num_mel_bins} mel bins cannot be computed from a {self.fft_size}-point FFT: "
                            f"bin {empty[0]} gets no frequency")
        return np.vstack([weights, np.zeros((1, o.num_mel_bins))]).astype(np.float32)

    def num_frames(self, num_samples):
        return (num_samples + self.frame_shift // 2) // self.frame_shift

    def frames(self, x):
        """(frames, frame_length) windows centred on each shift, reflected at both ends (Kaldi's
        snip_edges=false); a strided view over a padded copy, or an index for very short input."""
        n, length, shift = len(x), self.frame_length, self.frame_shift
        count = self.num_frames(n)
        left = length // 2 - shift // 2
        right = max(0, (count - 1) * shift - left + length - n)
        if n > max(left, right):
            padded = np.concatenate([x[:left][::-1], x, x[n - right:][::-1]])
            return np.lib.stride_tricks.sliding_window_view(padded, length)[::shift][:count].copy()
        index = (np.arange(count) * shift - left)[:, None] + np.arange(length)[None, :]
        while (index < 0).any() or (index >= n).any():  # reflected as often as it takes, as Kaldi does
            index = np.where(index < 0, -index - 1, index)
            index = np.where(index >= n, 2 * n - 1 - index, index)
        return x[index]

    def __call__(self, wave):
        x = np.asarray(wave, np.float32).reshape(-1) * np.float32(self.opts.sample_scale)
        if self.num_frames(len(x)) == 0:
            return np.zeros((0, self.opts.num_mel_bins), np.float32)
        frames = self.frames(x)
        frames -= frames.mean(axis=1, keepdims=True)
        frames[:, 1:] -= np.float32(PREEMPHASIS) * frames[:, :-1]
        frames[:, 0] *= np.float32(1 - PREEMPHASIS)
        frames *= self.window
        # numpy's FFT keeps float32 (numpy >= 2). scipy.fft's is twice as fast here but costs the
        # torch-free runtime 27 MB of memory and 130 ms to import
        spectrum = np.fft.rfft(frames, n=self.fft_size, axis=1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        energies = power.astype(np.float32) @ self.mel_weights
        return np.log(np.maximum(energies, np.finfo(np.float32).eps)).astype(np.float32)


def make_fbank(num_mel_bins=80):
    return Fbank(FbankOptions(num_mel_bins=int(num_mel_bins)))
