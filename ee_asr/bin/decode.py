"""Decode a dump dir at every exit, every score recorded (the N-best posterior of K = --nbest-size):
`python -m ee_asr.bin.decode --exp-dir exp/<tag> --data-dir dump/test`."""

import argparse
import logging
from pathlib import Path

from ee_asr.api.lm_options import add_lm_args, lm_output_suffix
from ee_asr.api.options import add_inference_args, blank_skip_suffix, engine_from_args, load_for_inference
from ee_asr.common.cli import run_main
from ee_asr.decode.decode_exits import decode_all_exits
from ee_asr.decode.split import read_utt_list


def get_parser():
    p = argparse.ArgumentParser(description=__doc__)
    add_inference_args(p)
    p.add_argument("--output", default=None, help="default: <exp-dir>/decode_<data-dir name>")
    add_lm_args(p)
    p.add_argument("--utt-list", default=None,
                   help="decode only these utterances (one job of a split decode; see ee_asr.bin.split_decode)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    keep = read_utt_list(args.utt_list, args.data_dir)  # before the model load: a bad list fails fast
    model, config = load_for_inference(args)
    out = args.output or str(Path(args.exp_dir) / f"decode_{Path(args.data_dir).name}{lm_output_suffix(args)}"
                                               f"{blank_skip_suffix(args)}")
    decode_all_exits(engine_from_args(args, model, config), config, args.data_dir, out, args.batch_bins, args.device,
                     keep=keep)
    logging.info("wrote %s", out)


if __name__ == "__main__":
    run_main(main)
