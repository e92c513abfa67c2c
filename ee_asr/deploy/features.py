"""Log-mel filterbank options as the manifest describes them (those of ee_asr.data.fbank.make_fbank
at export time), so the runtime computes the features the model was trained on."""

import kaldi_native_fbank as knf


def fbank_options(spec):
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = spec["samp_freq"]
    opts.frame_opts.dither = spec["dither"]
    opts.frame_opts.snip_edges = spec["snip_edges"]
    opts.mel_opts.num_bins = spec["num_mel_bins"]
    opts.mel_opts.low_freq = spec["low_freq"]
    opts.mel_opts.high_freq = spec["high_freq"]
    return opts
