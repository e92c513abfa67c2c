"""Global CMVN statistics of a feats.scp, as an npz that espnet's GlobalMVN reads."""

import argparse

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.data.cmvn import compute_global_stats, write_stats


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("feats_scp")
    p.add_argument("out_npz")
    args = p.parse_args(argv)
    setup_logging()
    stats = compute_global_stats(args.feats_scp)
    write_stats(stats, args.out_npz)
    print(f"{args.out_npz}: {int(stats['count'])} frames")


if __name__ == "__main__":
    run_main(main)
