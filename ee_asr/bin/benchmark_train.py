"""Training speed: audio seconds trained per second and per step, ours against ESPnet's
ESPnetASRModel (Conformer + InterCTC at the same layers and shape), in float32 and bfloat16
autocast, on the same random batches, interleaved; with --data-dir, also one pass over real
batches with 0 and N loader workers (the loop's wait for batches). E.g. on a CPU:

  python -m ee_asr.bin.benchmark_train --config conf/train_conformer_ctc_ee.yaml --vocab-size 256 \\
      --data-dir dump/fbank/train --bpemodel data/token_list/unigram1000/bpe.model \\
      --loader-config conf/train.yaml --workers 0 2 --output benchmark_train.json
"""

import argparse
import json
import logging

import torch

from ee_asr.benchmark.loading_speed import loading_passes, loading_setup
from ee_asr.benchmark.train_speed import model_variants, synthetic_batches, time_model_steps
from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import UserError
from ee_asr.train.config import load_config


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training YAML of the model to time against ESPnet's")
    p.add_argument("--device", default="cpu")
    p.add_argument("--vocab-size", type=int, default=256)
    p.add_argument("--batch-bins", type=int, default=None, help="padded frames per batch (default: the config's)")
    p.add_argument("--steps", type=int, default=3, help="batches timed per variant and repeat")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--no-amp", action="store_true", help="float32 only")
    p.add_argument("--no-espnet", action="store_true", help="ours only")
    p.add_argument("--data-dir", default=None, help="a dump dir: also time loading with --workers")
    p.add_argument("--bpemodel", default=None, help="the token model of --data-dir")
    p.add_argument("--loader-config", default=None, help="the model trained in the loading pass (default --config)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--loader-steps", type=int, default=40, help="training steps of each loading pass")
    p.add_argument("--online-data-dir", default=None,
                   help="a fbank_online dump of the same utterances: also time passes computing fbank on the fly")
    p.add_argument("--loader-repeats", type=int, default=1,
                   help="rounds of the loading passes (interleaved; the fastest of each kept)")
    p.add_argument("--skip-models", action="store_true", help="time the loading passes only")
    p.add_argument("--num-threads", type=int, default=1, help="torch threads (1: CPU time is the work done)")
    p.add_argument("--output", default=None, help="also write the JSON here")
    return p.parse_args(argv)


def model_comparison(args):
    config = {**load_config(args.config), "input_size": 80, "vocab_size": args.vocab_size}
    bins = args.batch_bins or config["batch_bins"]
    batches = synthetic_batches(args.steps, bins, 80, args.vocab_size, device=args.device)
    variants = model_variants(config, (False,) if args.no_amp else (False, True), not args.no_espnet, args.device)
    steps = time_model_steps(variants, batches, args.repeats, args.device)
    result = {"config": args.config, "device": torch.cuda.get_device_name() if "cuda" in args.device else "cpu",
              "threads": torch.get_num_threads(), "vocab_size": args.vocab_size, "batch_bins": bins,
              "batch_sizes": [len(b[2]) for b in batches], "steps": args.steps, "repeats": args.repeats,
              "variants": steps}
    for prec in ("fp32", "bf16"):
        if f"ours_{prec}" in steps and f"espnet_interctc_{prec}" in steps:
            for clock in ("wall", "cpu"):
                result[f"step_ratio_{prec}_{clock}"] = (steps[f"ours_{prec}"][f"step_seconds_{clock}"]
                                                        / steps[f"espnet_interctc_{prec}"][f"step_seconds_{clock}"])
    return result


def main(argv=None):
    args = parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.num_threads)
    if args.skip_models and not args.data_dir:
        raise UserError("--skip-models leaves nothing to time without --data-dir")
    loading = None
    if args.data_dir:  # read before any timing, so that a bad path fails at once
        if args.bpemodel is None:
            raise UserError("--data-dir needs --bpemodel (the token model of its transcripts)")
        loader_config = args.loader_config or args.config
        loading = loading_setup(load_config(loader_config), args.data_dir, args.bpemodel, args.loader_steps,
                                args.online_data_dir)
    result = {} if args.skip_models else model_comparison(args)
    if loading:
        result["loading"] = {"config": loader_config, "threads": torch.get_num_threads(),
                             **loading_passes(*loading, args.workers, args.loader_repeats, args.device)}
    text = json.dumps(result, indent=1)
    if args.output:
        atomic_write_text(args.output, text + "\n")
    print(text)
    for k, v in result.items():
        if k.startswith("step_ratio"):
            logging.info("%s (ours / ESPnet InterCTC): %.3f", k, v)


if __name__ == "__main__":
    run_main(main)
