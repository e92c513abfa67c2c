"""Log-mel filterbanks as the manifest describes them (the options of ee_asr.data.fbank.make_fbank),
built with kaldi-native-fbank directly so that the runtime does not need ee-asr's data package."""

import kaldi_native_fbank as knf
import numpy as np


def fbank_options(spec):
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = spec["samp_freq"]
    opts.frame_opts.dither = spec["dither"]
    opts.frame_opts.snip_edges = spec["snip_edges"]
    opts.mel_opts.num_bins = spec["num_mel_bins"]
    opts.mel_opts.low_freq = spec["low_freq"]
    opts.mel_opts.high_freq = spec["high_freq"]
    return opts


def compute_fbank(wave, opts, sample_scale=32768.0):
    """wave: float samples in [-1, 1] at the manifest's rate -> (frames, bins) float32."""
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(opts.frame_opts.samp_freq, (np.asarray(wave, np.float32) * sample_scale).tolist())
    fb.input_finished()
    n = fb.num_frames_ready
    if not n:
        return np.zeros((0, opts.mel_opts.num_bins), np.float32)
    return np.stack([fb.get_frame(i) for i in range(n)]).astype(np.float32)
