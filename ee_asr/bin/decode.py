"""Decode a dump dir at every exit: `python -m ee_asr.bin.decode --exp-dir exp/<tag> --data-dir dump/test`."""

import argparse
import logging
from pathlib import Path

import torch

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.decode.decode_exits import decode_all_exits
from ee_asr.models.load import load_trained


def get_parser():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--data-dir", required=True, help="dump dir with feats.scp, utt2num_frames, text")
    p.add_argument("--output-dir", default=None, help="default: <exp-dir>/decode_<data-dir name>")
    p.add_argument("--model-file", default="model.pth")
    p.add_argument("--batch-bins", type=int, default=40000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--nbest-beam", type=int, default=0,
                   help="also score each exit by its N-best posterior from a CTC prefix beam of this width")
    p.add_argument("--num-threads", type=int, default=1)
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.num_threads)
    out = args.output_dir or str(Path(args.exp_dir) / f"decode_{Path(args.data_dir).name}")
    model, config = load_trained(args.exp_dir, args.model_file, args.device)
    decode_all_exits(model, config, args.data_dir, out, args.batch_bins, args.device, args.nbest_beam)
    logging.info("wrote %s", out)


if __name__ == "__main__":
    run_main(main)
