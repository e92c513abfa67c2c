"""Score every decode dir of an experiment: `python -m ee_asr.bin.score --exp-dir exp/<tag>`.

Writes `<exp-dir>/RESULTS.md` (ESPnet's table format, one row per exit; then per test set the
exits' WER with paired-bootstrap intervals, and the exit-selection trade-off with a plot
`tradeoff_<set>.png`) and prints it.
"""

import argparse

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.score.report import write_results


def get_parser():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap draws of the test utterances")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging()
    print(write_results(args.exp_dir, args.bootstrap))


if __name__ == "__main__":
    run_main(main)
