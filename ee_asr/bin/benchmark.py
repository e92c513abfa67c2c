"""Benchmark early exit on a trained experiment: what decoding at each exit and each policy
costs against the full model, and what the early-exit loss costs in training.

  python -m ee_asr.bin.benchmark --exp-dir exp/<tag> --data-dir dump/test

Prints tables and writes JSON (default <exp-dir>/benchmark.json) with `exits` ({exit, seconds,
ratio, ideal_ratio}), `policies` ({policy, threshold, wer, mean_exit, compute_ratio,
time_ratio, fixed_time_ratio, excess_time}: the fixed exits' time interpolated at the point's
mean exit, and the policy's time beyond it) and `train_step_ratio` (early-exit step / single-exit
step of the same depth).

With --lm (an ARPA LM from ee_asr.bin.build_lm) the policy points decode with the word LM beam
and every exit is also timed with it (`lm_seconds`, `lm_ratio`); all time ratios stay against
greedy decoding at the last exit, and a point's fixed-exit line is the LM beam's.
"""

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from ee_asr.api.lm_options import add_lm_args, lm_search_from_args
from ee_asr.api.options import add_exit_args, blank_skip_from_args
from ee_asr.benchmark.policy_speed import load_batches, time_exits, time_policies
from ee_asr.benchmark.step_timing import time_train_steps
from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import add_renamed_options, run_main, setup_logging
from ee_asr.common.edit_ops import error_rate, errors_of, word_counts
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.torch_backend import NBEST_TOKEN_BEAM, torch_engine
from ee_asr.exits.exit_classifier import load_for_experiment
from ee_asr.exits.policies import parse_grid
from ee_asr.models.load import load_trained
from ee_asr.train.config import DERIVED, load_config


def parse_points(specs):
    return [(policy, t) for policy, thresholds in parse_grid(specs) for t in thresholds]


def add_fixed_line_time(policies, exits, ratio="ratio"):
    """Each policy point's time beside the fixed exits' time at the same mean exit (the fixed
    exits' time ratios interpolated linearly): `excess_time` > 0 is what the policy's decisions
    cost beyond stopping everybody at that depth. `ratio`: the exits' column of the points' search."""
    layers, ratios = [e["exit"] for e in exits], [e[ratio] for e in exits]
    for p in policies:
        p["fixed_time_ratio"] = float(np.interp(p["mean_exit"], layers, ratios))
        p["excess_time"] = p["time_ratio"] - p["fixed_time_ratio"]


def print_tables(result):
    exits, lm = result["exits"], result["lm"]
    print("|exit|seconds|ratio|ideal ratio|excess|" + ("LM beam seconds|LM beam ratio|" if lm else ""))
    print("|---" * (7 if lm else 5) + "|")
    for e in exits:
        print(f"|{e['exit']}|{e['seconds']:.3f}|{e['ratio']:.3f}|{e['ideal_ratio']:.3f}|"
              f"{e['ratio'] - e['ideal_ratio']:+.3f}|" + (f"{e['lm_seconds']:.3f}|{e['lm_ratio']:.3f}|" if lm else ""))
    if lm:
        print("\npolicies with the LM beam; time ratios against greedy decoding at the last exit")
    print("\n|policy|threshold|WER|mean exit|compute|time ratio|fixed exits' time at that mean exit|excess|"
          "\n|---|---|---|---|---|---|---|---|")
    for p in result["policies"]:
        name = p["policy"] + ("" if p.get("nbest_bounds", True) else f" exact ({p['same_exits']} same exits)")
        print(f"|{name}|{p['threshold']:g}|{p['wer']:.2f}|{p['mean_exit']:.2f}|{p['compute_ratio']:.3f}|"
              f"{p['time_ratio']:.3f}|{p['fixed_time_ratio']:.3f}|{p['excess_time']:+.3f}|")
    steps = result["train_step_seconds"]
    if steps:
        print(f"\ntraining step: early-exit {steps['early_exit']:.3f}s, single-exit {steps['single_exit']:.3f}s, "
              f"ratio {result['train_step_ratio']:.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp-dir", required=True, help="experiment dir with config.yaml and the weights")
    ap.add_argument("--data-dir", required=True, help="dump dir with feats.scp, utt2num_frames, text")
    ap.add_argument("--points", nargs="*", default=["entropy:0.02", "entropy:0.05", "entropy:0.1", "maxprob:0.9",
                                                     "maxprob:0.95"], help="policy:threshold operating points")
    add_exit_args(ap)
    ap.add_argument("--exact-nbest", action="store_true",
                    help="also time each nbest point with the N-best posterior at every exit (no bounds: "
                         "the paper's procedure), and count the utterances whose exit is the same")
    ap.add_argument("--max-utts", type=int, default=200)
    ap.add_argument("--batch-bins", type=int, default=40000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=4, help="0: no training steps timed")
    ap.add_argument("--num-threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train-config", default=None,
                    help="time training steps of this training YAML instead of the experiment's model")
    ap.add_argument("--train-batch-bins", type=int, default=8000)
    ap.add_argument("--output", default=None)
    ap.add_argument("--beam-size", type=int, default=0, help="with --lm: the LM beam's width")
    ap.add_argument("--token-beam", type=int, default=0,
                    help="tokens tried per frame by a CTC beam search: the N-best posterior's, or the LM beam's; "
                         "0: each search's default (5 and 20)")
    add_lm_args(ap)
    add_renamed_options(ap, {"--exp": "--exp-dir", "--data": "--data-dir"})
    args = ap.parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.num_threads)
    model, config = load_trained(args.exp_dir, device=args.device)
    tokenizer = Tokenizer(config["bpemodel"])
    dataset = FeatureDataset(args.data_dir, tokenizer)
    batches = load_batches(dataset, args.batch_bins, args.max_utts, args.device)
    refs = [dataset.text[u] for b in batches for u in b[0]]

    def wer_of(results):
        errors = sum(errors_of(word_counts(ref, tokenizer.decode(r["ids"]))) for ref, r in zip(refs, results))
        return error_rate(errors, sum(len(r.split()) for r in refs))

    points = parse_points(args.points)
    classifier = load_for_experiment(args.exp_dir) if any(p == "learned" for p, _ in points) else None
    lm_search = lm_search_from_args(args, config)
    token_beam = args.token_beam or NBEST_TOKEN_BEAM
    skip = blank_skip_from_args(args)  # the policy points only: the exits and the reference run without
    greedy = torch_engine(model, args.nbest_size, token_beam, classifier)
    points_engine = torch_engine(model, args.nbest_size, token_beam, classifier, search=lm_search, blank_skip=skip)
    lm = points_engine if lm_search else None
    logging.info("timing %d exits on %d utterances%s", len(model.exit_layers), len(refs),
                 " (greedy and LM beam)" if lm else "")
    exits = time_exits(model, batches, args.repeats, lm)
    logging.info("timing %d policy operating points", len(args.points))
    exact = (torch_engine(model, args.nbest_size, token_beam, nbest_bounds=False)
             if args.exact_nbest and not lm else None)
    policies = time_policies(points_engine, batches, points, args.repeats, wer_of, args.max_layers,
                             reference=greedy if lm or skip else None, exact_nbest_engine=exact)
    add_fixed_line_time(policies, exits, "lm_ratio" if lm else "ratio")
    steps = {}
    if args.train_steps > 0:
        logging.info("timing training steps")
        train_config = config
        if args.train_config:
            train_config = {**load_config(args.train_config), **{k: config[k] for k in DERIVED},
                            "normalize_conf": config.get("normalize_conf")}
        train_batches = load_batches(dataset, args.train_batch_bins, args.max_utts, args.device)
        steps = time_train_steps(train_config, train_batches, args.repeats, args.train_steps, args.device)
    result = {"exp_dir": str(args.exp_dir), "data_dir": str(args.data_dir), "utterances": len(refs),
              "threads": args.num_threads,
              "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
              "train_config": args.train_config or "experiment's", "lm": args.lm, "blank_skip": skip,
              "exits": exits, "policies": policies, "train_step_seconds": steps,
              "train_step_ratio": steps["early_exit"] / steps["single_exit"] if steps else None}
    print_tables(result)
    out = Path(args.output or Path(args.exp_dir) / "benchmark.json")
    atomic_write_text(out, json.dumps(result, indent=1))
    logging.info("wrote %s", out)


if __name__ == "__main__":
    run_main(main)
