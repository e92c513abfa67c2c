"""Options and loading shared by the tools that decode with a trained experiment."""

import torch

from ee_asr.common.cli import setup_logging
from ee_asr.models.load import load_trained


def add_inference_args(parser):
    """Options shared by the tools that load a trained experiment and decode a dump dir."""
    parser.add_argument("--exp-dir", required=True, help="experiment dir with config.yaml and the weights")
    parser.add_argument("--data-dir", required=True, help="dump dir with feats.scp, utt2num_frames, text")
    parser.add_argument("--model-file", default="model.pth")
    parser.add_argument("--batch-bins", type=int, default=40000, help="padded frames per batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-threads", type=int, default=1)


def load_for_inference(args):
    """Set threads and logging, then load the model and resolved config named by `args`."""
    setup_logging()
    torch.set_num_threads(args.num_threads)
    return load_trained(args.exp_dir, args.model_file, args.device)
