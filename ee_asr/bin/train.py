"""Train an early-exit model: `python -m ee_asr.bin.train --config conf/train_conformer_ctc_ee.yaml ...`.

Run the same command again to resume from the latest epoch checkpoint. For several
processes, launch with `torchrun --nproc_per_node N -m ee_asr.bin.train ...`.
"""

import argparse
import logging
import os

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.train.config import apply_sets, load_config, parse_set
from ee_asr.train.distributed import DEFAULT_TIMEOUT_S, TIMEOUT_ENV
from ee_asr.train.experiment import train


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training YAML")
    p.add_argument("--train-dir", required=True, help="dump dir with feats.scp, utt2num_frames, text")
    p.add_argument("--valid-dir", required=True)
    p.add_argument("--bpemodel", required=True, help="sentencepiece .model")
    p.add_argument("--cmvn", default=None, help="global CMVN stats (npz) for normalize: global_mvn")
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--max-epoch", type=int, default=None, help="override the config's max_epoch")
    p.add_argument("--pretrained", default=None,
                   help="Hugging Face checkpoint dir to initialise the encoder from (fine-tuning)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, dotted keys for nested ones (YAML value), e.g. "
                        "--set encoder_conf.num_blocks=4 --set encoder_conf.exit_layers=[4]; repeatable")
    p.add_argument("--dist-timeout", type=float, default=None, metavar="SECONDS",
                   help="several processes: how long a rank waits for the others before failing "
                        f"(default {DEFAULT_TIMEOUT_S}; must exceed rank 0's validation and checkpoint writing)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    if args.dist_timeout is not None:
        os.environ[TIMEOUT_ENV] = str(args.dist_timeout)  # read by init_distributed in every rank
    os.makedirs(args.exp_dir, exist_ok=True)
    setup_logging("INFO" if rank == 0 else "WARNING", os.path.join(args.exp_dir, f"train.rank{rank}.log"))
    overrides = {"max_epoch": args.max_epoch} if args.max_epoch is not None else {}
    if args.pretrained:
        overrides["pretrained"] = args.pretrained
    config = apply_sets(load_config(args.config, overrides), parse_set(args.set))
    path = train(config, args.exp_dir, args.train_dir, args.valid_dir, args.bpemodel, args.cmvn, args.device)
    logging.info("final model: %s", path)


if __name__ == "__main__":
    run_main(main)
