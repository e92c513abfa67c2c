"""Check that calibrated exit thresholds keep their promise (ee_asr/score/calibration_check.py).

Resampling, on each set: calibrate on a random half, measure on the other, --splits times:
  python -m ee_asr.bin.check_calibration <wav2vec2-ee results dir> --splits 200 \\
      --policy entropy fixed --max-wer-increase 0.5 1 2 --confidence 0.9
The same across a shift: calibrate on random halves of one set, check on random halves of others:
  python -m ee_asr.bin.check_calibration exp/<tag>/decode_test/exits.jsonl --splits 200 \\
      --calibration-set exp/<tag>/calibration_data/dev_unseen/exits.jsonl --policy entropy fixed --max-wer-increase 1
Promised against achieved, on other sets, with the thresholds of a calibration.json:
  python -m ee_asr.bin.check_calibration exp/<tag>/decode_test/exits.jsonl --calibration exp/<tag>/calibration.json

Prints a markdown table; --output PREFIX also writes PREFIX.json and PREFIX.md.
"""

import argparse
import json
import logging
from pathlib import Path

from ee_asr.api.calibration_options import add_input_options, read_inputs
from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import UserError
from ee_asr.exits.policies import ONLINE_POLICIES
from ee_asr.score.calibration import read_calibration
from ee_asr.score.calibration_check import promised_table, promised_vs_achieved, resampling_check, resampling_table


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", nargs="+", help="exits.jsonl files, or a wav2vec2-ee results dir")
    p.add_argument("--calibration", default=None, help="calibration.json to check on the scores' sets")
    p.add_argument("--splits", type=int, default=0, help="random halves to calibrate on and check on the other")
    p.add_argument("--calibration-set", default=None,
                   help="with --splits: calibrate on halves of this set (exits.jsonl), check on halves of the scores'")
    p.add_argument("--policy", nargs="+", choices=ONLINE_POLICIES, default=None)
    p.add_argument("--max-wer-increase", type=float, nargs="+", default=None, metavar="EPS")
    p.add_argument("--confidence", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="prefix of the .json and .md written")
    add_input_options(p)
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging()
    if bool(args.calibration) == bool(args.splits):
        raise UserError("give either --calibration FILE (promised against achieved) or --splits N (resampling)")
    if args.calibration_set and not args.splits:
        raise UserError("--calibration-set goes with --splits")
    document = read_calibration(args.calibration) if args.calibration else None  # a bad file fails first
    tables = {}
    for path in args.scores:
        tables.update(read_inputs(args, Path(path)))
    if document:
        rows = promised_vs_achieved(document, tables)
        table = promised_table(rows)
    else:
        if not args.policy or not args.max_wer_increase:
            raise UserError("--splits needs --policy and --max-wer-increase")
        if not 0 < args.confidence < 1:
            raise UserError(f"--confidence must be between 0 and 1 (exclusive), not {args.confidence}")
        calib = None
        if args.calibration_set:
            calib_tables = read_inputs(args, Path(args.calibration_set))
            if len(calib_tables) != 1:
                raise UserError(f"--calibration-set {args.calibration_set}: one set, not {', '.join(calib_tables)}")
            (calib,) = calib_tables.values()
        rows = []
        for t in tables.values():
            for policy in args.policy:
                rows += resampling_check(calib or t, policy, args.max_wer_increase, args.confidence, args.splits,
                                         args.seed, test_table=t if calib else None)
                logging.info("%s: %s, %d splits checked", rows[-1]["set"], policy, args.splits)
        table = resampling_table(rows)
    if args.output:
        atomic_write_text(Path(f"{args.output}.json"), json.dumps(rows, indent=1) + "\n")
        atomic_write_text(Path(f"{args.output}.md"), table)
    print(table, end="")


if __name__ == "__main__":
    run_main(main)
