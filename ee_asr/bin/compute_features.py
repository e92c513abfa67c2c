"""Write 80-dim log-mel fbank (or the raw waveform) for one wav.scp (one job of a stage-2 split)
as ark/scp, or, for an on-the-fly dump, only the lengths and CMVN sums; with --online-conf-dir,
after the jobs, the on-the-fly dump's online_features.json."""

import argparse
import logging

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.data.features import FEATS_TYPES, write_features
from ee_asr.data.online_features import ONLINE_TYPES, write_lengths_and_stats, write_online_conf


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--wav-scp")
    p.add_argument("--segments", default=None)
    p.add_argument("--out-prefix", help="writes <prefix>.ark, .scp and .num_frames")
    p.add_argument("--num-mel-bins", type=int, default=80)
    p.add_argument("--feats-type", default="fbank", choices=(*FEATS_TYPES, *ONLINE_TYPES),
                   help="raw: the 16 kHz waveform itself as an (N, 1) matrix, for wav2vec2 models; "
                        "fbank_online, raw_online: only <prefix>.num_frames (frames; samples for raw_online) "
                        "and CMVN sums <prefix>.stats.npz, training computes the features from the audio "
                        "(data/online_features.py)")
    p.add_argument("--online-conf-dir", metavar="DUMP_DIR",
                   help="instead of a job: write DUMP_DIR/online_features.json, which makes it an on-the-fly "
                        "dump of --feats-type (after every job succeeded)")
    args = p.parse_args(argv)
    setup_logging()
    if args.online_conf_dir:
        if args.feats_type not in ONLINE_TYPES:
            p.error(f"--online-conf-dir needs an on-the-fly --feats-type ({', '.join(ONLINE_TYPES)})")
        write_online_conf(args.online_conf_dir, args.feats_type, args.num_mel_bins)
        return
    if not (args.wav_scp and args.out_prefix):
        p.error("--wav-scp and --out-prefix are required")
    if args.feats_type in ONLINE_TYPES:
        n = write_lengths_and_stats(args.wav_scp, args.out_prefix, args.segments, args.num_mel_bins, args.feats_type)
    else:
        n = write_features(args.wav_scp, args.out_prefix, args.segments, args.num_mel_bins, args.feats_type)
    logging.info("%s: %d utterances", args.out_prefix, n)


if __name__ == "__main__":
    run_main(main)
