"""Make a speed-perturbed copy of a data dir: `python -m ee_asr.bin.perturb_speed --data data/train
--out data/train_sp --factors 0.9 1.0 1.1` (audio is resampled on the fly by sox at feature time)."""

import argparse
import logging

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.data.speed_perturb import perturb_data_dir


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--factors", nargs="+", required=True)
    args = p.parse_args(argv)
    setup_logging()
    n = perturb_data_dir(args.data, args.out, args.factors)
    logging.info("%s: %d utterances", args.out, n)


if __name__ == "__main__":
    run_main(main)
