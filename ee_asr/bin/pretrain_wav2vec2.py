"""Pre-train a Wav2Vec2 self-supervised (contrastive + diversity loss) on a raw-audio dump, no transcripts:

  python -m ee_asr.bin.pretrain_wav2vec2 --arch-config conf/train_wav2vec2_ctc_ee_scratch.yaml \\
      --train-dir dump/raw/train --out-dir exp/wav2vec2_pretrain --max-updates 6000

The architecture is a wav2vec2_ee training config's `encoder_conf.hf_config`. Writes OUT_DIR/hf
(Hugging Face save_pretrained; fine-tune with `--pretrained OUT_DIR/hf`); the same command again
resumes from OUT_DIR/pretrain_state.pth. `--max-updates 0` saves the random initialisation.
"""

import argparse
import logging
from pathlib import Path

from ee_asr.common.atomic import make_output_dir
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import UserError


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch-config", required=True, help="a wav2vec2_ee training YAML: its encoder_conf.hf_config")
    p.add_argument("--train-dir", required=True, help="raw-audio dump dir (feats.scp, utt2num_frames); text unused")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--max-updates", type=int, required=True, help="updates in the whole run (0: save the init)")
    p.add_argument("--batch-bins", type=int, default=400000, help="padded samples per batch")
    p.add_argument("--lr", type=float, default=0.001, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=500, help="updates of linear warm-up; then linear decay to 5%%")
    p.add_argument("--mask-prob", type=float, default=0.5,
                   help="share of frames starting a masked span (wav2vec 2.0: 0.65)")
    p.add_argument("--mask-length", type=int, default=2, help="frames per masked span (wav2vec 2.0: 10 of 20 ms)")
    p.add_argument("--num-negatives", type=int, default=20, help="distractors per masked frame")
    p.add_argument("--codevector-groups", type=int, default=2)
    p.add_argument("--codevectors-per-group", type=int, default=64)
    p.add_argument("--codevector-dim", type=int, default=64)
    p.add_argument("--diversity-weight", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--log-interval", type=int, default=50)
    p.add_argument("--save-every", type=int, default=500, help="updates between resumable training states")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    for name in ("max_updates", "seed"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must not be negative")
    for name in ("batch_bins", "warmup", "mask_length", "num_negatives", "codevector_groups", "codevectors_per_group",
                 "codevector_dim", "num_threads", "log_interval", "save_every"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.mask_prob <= 1:
        raise UserError(f"--mask-prob must be in (0, 1], not {args.mask_prob}")
    if args.codevector_dim % args.codevector_groups:
        raise UserError(f"--codevector-dim {args.codevector_dim} must be divisible by --codevector-groups")
    make_output_dir(args.out_dir, probe=True)
    setup_logging("INFO", str(Path(args.out_dir) / "pretrain.log"))
    # imported after the checks: transformers takes seconds to load
    from ee_asr.train.pretrain import pretrain

    opts = {k: v for k, v in vars(args).items() if k not in ("arch_config", "train_dir", "out_dir")}
    out = pretrain(args.arch_config, args.train_dir, args.out_dir, opts)
    logging.info("fine-tune with --pretrained %s", out)


if __name__ == "__main__":
    run_main(main)
