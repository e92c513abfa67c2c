"""Write 80-dim log-mel fbank (or the raw waveform) for one wav.scp (one job of a stage-2 split) as ark/scp."""

import argparse
import logging

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.data.features import FEATS_TYPES, write_features
from ee_asr.data.online_fbank import write_lengths_and_stats


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--wav-scp", required=True)
    p.add_argument("--segments", default=None)
    p.add_argument("--out-prefix", required=True, help="writes <prefix>.ark, .scp and .num_frames")
    p.add_argument("--num-mel-bins", type=int, default=80)
    p.add_argument("--feats-type", default="fbank", choices=(*FEATS_TYPES, "fbank_online"),
                   help="raw: the 16 kHz waveform itself as an (N, 1) matrix, for wav2vec2 models; "
                        "fbank_online: only <prefix>.num_frames and CMVN sums <prefix>.stats.npz, "
                        "training computes fbank from the audio (data/online_fbank.py)")
    args = p.parse_args(argv)
    setup_logging()
    if args.feats_type == "fbank_online":
        n = write_lengths_and_stats(args.wav_scp, args.out_prefix, args.segments, args.num_mel_bins)
    else:
        n = write_features(args.wav_scp, args.out_prefix, args.segments, args.num_mel_bins, args.feats_type)
    logging.info("%s: %d utterances", args.out_prefix, n)


if __name__ == "__main__":
    run_main(main)
