"""Time an architecture from its config alone, on random inputs: the early-exit training step
against a single-exit model of the same depth, and decoding at each fixed exit against the
bare encoder with as many layers. No data or training needed, e.g. the paper-sized configs:

  python -m ee_asr.bin.benchmark_arch --config conf/train_conformer_aed_ee.yaml --device cuda
"""

import argparse
import json
import logging

import torch

from ee_asr.benchmark.policy_speed import time_exits
from ee_asr.benchmark.step_timing import synthetic_batches, time_train_steps
from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.models.registry import build_model
from ee_asr.train.config import load_config


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--vocab-size", type=int, default=302)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seconds", type=float, default=12.0, help="longest utterance in a batch")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per model and repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--with-loop", action="store_true",
                   help="also time the early-exit step with its per-exit loss loop (train_step_ratio_loop)")
    p.add_argument("--skip-exits", action="store_true", help="time training steps only")
    p.add_argument("--num-threads", type=int, default=0, help="torch threads; 0: torch's default")
    p.add_argument("--output", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    setup_logging()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    config = load_config(args.config)
    raw = config["encoder"] == "wav2vec2_ee"
    config.update(input_size=1 if raw else 80, vocab_size=args.vocab_size, normalize=None)
    batches = synthetic_batches(config, args.steps, args.batch_size, args.seconds, args.device)
    steps = time_train_steps(config, batches, args.repeats, args.steps, args.device, args.with_loop)
    model = build_model(config).to(args.device).eval()
    exits = [] if args.skip_exits else time_exits(model, batches, args.repeats)
    result = {"config": args.config, "device": torch.cuda.get_device_name() if "cuda" in args.device else "cpu",
              "batch_size": args.batch_size, "seconds": args.seconds,
              "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
              "threads": torch.get_num_threads(), "train_step_seconds": steps,
              "train_step_ratio": steps["early_exit"] / steps["single_exit"], "exits": exits}
    if args.with_loop:
        result["train_step_ratio_loop"] = steps["early_exit_loop"] / steps["single_exit"]
    text = json.dumps(result, indent=1)
    if args.output:
        atomic_write_text(args.output, text + "\n")
    print(text)
    logging.info("train step ratio early-exit / single-exit: %.3f", result["train_step_ratio"])


if __name__ == "__main__":
    run_main(main)
