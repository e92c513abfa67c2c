"""Compare experiments in one markdown table: `python -m ee_asr.bin.compare exp/* ../*/exp/*`.

Rows are experiments and columns exits (WER %), per test set; single-exit experiments make the
baseline, and each early-exit experiment gets its difference from it per depth. With
`--reference EXP`, every experiment gets its difference from EXP at each exit instead. Differences
carry their paired bootstrap 95% interval (bold where it excludes zero).
"""

import argparse
from pathlib import Path

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main
from ee_asr.score.compare import compare_table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dirs", nargs="+", help="experiment dirs with results.json (stage 6)")
    p.add_argument("--reference", default=None,
                   help="experiment dir every other one is compared with, exit by exit")
    p.add_argument("--output", default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    dirs = [d for d in args.exp_dirs if Path(d, "results.json").is_file() or Path(d, "config.yaml").is_file()]
    text = compare_table(dirs or args.exp_dirs, args.reference)
    if args.output:
        atomic_write_text(args.output, text + "\n")
    print(text)


if __name__ == "__main__":
    run_main(main)
