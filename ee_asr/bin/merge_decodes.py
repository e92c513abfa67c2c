"""Join the outputs of a split decode: `python -m ee_asr.bin.merge_decodes --data-dir dump/test
--output exp/<tag>/decode_test exp/<tag>/decode_test/split/1 exp/<tag>/decode_test/split/2 ...`.

Each part is a job's output dir (exits.jsonl, exit<L>/text, policy_*/thr_*/). Checks that every
utterance of --data-dir appears exactly once per exit and per policy operating point, and fails
naming the missing or doubled ones; writes the merged files as one job would have written them.
"""

import argparse
import logging
from pathlib import Path

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import UserError
from ee_asr.data.datadir import read_dict
from ee_asr.decode.split import merge_exits, merge_policies


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="the dump dir that was decoded (its utt2num_frames)")
    p.add_argument("--output", required=True, help="the decode dir to write")
    p.add_argument("parts", nargs="+", help="the jobs' output dirs")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging()
    utts = list(read_dict(Path(args.data_dir) / "utt2num_frames"))
    for part in args.parts:
        if not Path(part).is_dir():
            raise UserError(f"{part}: no such job output dir: did that decoding job fail? (see its log)")
    layers = merge_exits(args.parts, utts, args.output)
    logging.info("merged %d jobs: %d utterances at exits %s into %s", len(args.parts), len(utts), layers, args.output)
    points = merge_policies(args.parts, utts, args.output)
    if points:
        logging.info("merged %d policy operating points of %d jobs", len(points), len(args.parts))


if __name__ == "__main__":
    run_main(main)
