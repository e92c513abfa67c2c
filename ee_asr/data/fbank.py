"""Kaldi-compatible log-mel filterbanks of one waveform (kaldi-native-fbank): stage 2, transcribe
and anything that must compute the features a model was trained on."""

import kaldi_native_fbank as knf
import numpy as np

from ee_asr.common.errors import UserError

SAMPLE_RATE = 16000


def make_fbank(num_mel_bins=80, dither=0.0):
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    # Dither adds noise that makes reruns differ; features must be reproducible for resume.
    opts.frame_opts.dither = dither
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = num_mel_bins
    try:
        knf.OnlineFbank(opts)  # checks the options: a bad bin count is otherwise a ValueError per utterance
    except ValueError as e:
        raise UserError(f"{num_mel_bins} mel bins cannot be computed: {e}") from None
    return opts


def compute_fbank(wave, opts, sample_scale=32768.0):
    """wave: float samples in [-1, 1] at the options' rate -> (frames, bins) float32.
    kaldi-native-fbank, like Kaldi, expects 16-bit integer range: `sample_scale` (an exported
    sherpa-onnx graph may be fed other scales)."""
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(opts.frame_opts.samp_freq, (np.asarray(wave, np.float32) * sample_scale).tolist())
    fb.input_finished()
    n = fb.num_frames_ready
    if not n:
        return np.zeros((0, opts.mel_opts.num_bins), np.float32)
    return np.stack([fb.get_frame(i) for i in range(n)]).astype(np.float32)
