"""Make a speed-perturbed copy of a data dir: `python -m ee_asr.bin.perturb_speed --data-dir data/train
--output data/train_sp --factors 0.9 1.0 1.1` (audio is resampled on the fly by sox at feature time)."""

import argparse
import logging

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.data.speed_perturb import perturb_data_dir


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--output", required=True, help="the perturbed data dir to write")
    p.add_argument("--factors", nargs="+", required=True)
    args = p.parse_args(argv)
    setup_logging()
    n = perturb_data_dir(args.data_dir, args.output, args.factors)
    logging.info("%s: %d utterances", args.output, n)


if __name__ == "__main__":
    run_main(main)
