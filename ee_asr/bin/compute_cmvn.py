"""Global CMVN statistics of a feats.scp, as an npz that espnet's GlobalMVN reads; for an
on-the-fly dump dir (fbank_online, raw_online), the sum of its stage-2 jobs' statistics
(split/feats.*.stats.npz)."""

import argparse
from pathlib import Path

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import UserError
from ee_asr.data.cmvn import compute_global_stats, merge_stats, write_stats
from ee_asr.data.online_features import is_online_dump


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("feats_scp", help="a feats.scp, or a fbank_online or raw_online dump dir")
    p.add_argument("out_npz")
    args = p.parse_args(argv)
    setup_logging()
    if Path(args.feats_scp).is_dir():
        if not is_online_dump(args.feats_scp):
            raise UserError(f"{args.feats_scp} is a directory but not a fbank_online or raw_online dump: "
                            f"give its feats.scp")
        stats = merge_stats(sorted(Path(args.feats_scp).glob("split/feats.*.stats.npz")))
    else:
        stats = compute_global_stats(args.feats_scp)
    write_stats(stats, args.out_npz)
    print(f"{args.out_npz}: {int(stats['count'])} frames")


if __name__ == "__main__":
    run_main(main)
