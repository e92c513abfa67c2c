"""Benchmark blank frames dropped above an exit (exits/blank_skip.py) on a trained experiment:
time and WER of the fixed exits, of skipping alone at the last exit, and of exit policies without
and with skipping, all timed in one run (benchmark/blank_skip_speed.py).

  python -m ee_asr.bin.benchmark_blank_skip --exp-dir exp/<tag> --data-dir dump/test \\
      --blank-skip-after 2 4 6 --blank-skip-threshold 0.9 0.95 0.99 --points learned:0.75 entropy:0.05

Prints a markdown table and writes JSON (default <exp-dir>/benchmark_blank_skip.json): `rows`, one
per configuration (benchmark.blank_skip_speed.blank_skip_table says what each holds).
"""

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from ee_asr.benchmark.blank_skip_speed import blank_skip_table, markdown, onnx_inputs, plot, torch_inputs
from ee_asr.benchmark.policy_speed import load_test_set
from ee_asr.bin.benchmark import parse_points
from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.edit_ops import errors_of, word_counts
from ee_asr.decode.torch_backend import torch_engine
from ee_asr.deploy.onnx_backend import onnx_engine
from ee_asr.exits.exit_classifier import load_for_experiment
from ee_asr.models.load import load_trained


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp-dir", required=True, help="experiment dir with config.yaml and the weights")
    ap.add_argument("--data-dir", required=True, help="dump dir with feats.scp, utt2num_frames, text")
    ap.add_argument("--blank-skip-after", type=int, nargs="+", default=[2, 4, 6],
                    help="exit layers to drop frames after (each, with each threshold)")
    ap.add_argument("--blank-skip-threshold", type=float, nargs="+", default=[0.9, 0.95, 0.99],
                    help="blank posteriors above which a frame is dropped")
    ap.add_argument("--points", nargs="*", default=["entropy:0.05"], help="policy:threshold operating points")
    ap.add_argument("--reference-exp-dir", default=None,
                    help="decode without skipping with this experiment (the one --exp-dir was fine-tuned from "
                         "with model_conf.blank_skip); default: --exp-dir itself")
    ap.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                    help="onnx: the exports in <exp-dir>/onnx (and <reference-exp-dir>/onnx), fp32")
    ap.add_argument("--max-utts", type=int, default=300)
    ap.add_argument("--batch-bins", type=int, default=40000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--num-threads", type=int, default=1)
    ap.add_argument("--nbest-size", type=int, default=10, help="K of the nbest policy's N-best posterior")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--output", default=None)
    ap.add_argument("--plot", default=None, help="also draw time against WER into this PNG")
    args = ap.parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.num_threads)
    model, config, tokenizer, batches, refs = load_test_set(args.exp_dir, args.data_dir, args.batch_bins,
                                                            args.max_utts, args.device)

    def utt_errors(results):
        return [(errors_of(word_counts(ref, tokenizer.decode(r["ids"]))), len(ref.split()))
                for ref, r in zip(refs, results)]

    points = parse_points(args.points)
    classifier = load_for_experiment(args.exp_dir) if any(p == "learned" for p, _ in points) else None
    skips = [(a, t) for a in args.blank_skip_after for t in args.blank_skip_threshold]
    logging.info("timing %d skipping configurations and %d points on %d utterances, %d repeats",
                 len(skips), len(points), len(refs), args.repeats)
    ref_dir = args.reference_exp_dir or args.exp_dir
    if args.backend == "onnx":
        def engine_for(skip):
            return onnx_engine(Path(ref_dir if skip is None else args.exp_dir) / "onnx", num_threads=args.num_threads,
                               nbest_size=args.nbest_size, policy="learned" if classifier else None,
                               blank_skip=None if skip is None else ([skip[0]], skip[1]))
        inputs = onnx_inputs(batches)
    else:
        reference = load_trained(ref_dir, device=args.device)[0] if args.reference_exp_dir else model
        ref_classifier = load_for_experiment(ref_dir) if classifier else None

        def engine_for(skip):
            if skip is None:
                return torch_engine(reference, args.nbest_size, classifier=ref_classifier)
            return torch_engine(model, args.nbest_size, classifier=classifier, blank_skip=([skip[0]], skip[1]))
        inputs = torch_inputs(batches)
    clock = time.thread_time if args.num_threads == 1 and args.device == "cpu" else time.perf_counter
    rows = blank_skip_table(engine_for, inputs, utt_errors, skips, points, args.repeats, clock)
    print(markdown(rows))
    result = {"exp_dir": str(args.exp_dir), "reference_exp_dir": args.reference_exp_dir, "backend": args.backend,
              "data_dir": str(args.data_dir), "utterances": len(refs),
              "threads": args.num_threads, "repeats": args.repeats, "batch_bins": args.batch_bins, "rows": rows}
    out = Path(args.output or Path(args.exp_dir) / "benchmark_blank_skip.json")
    atomic_write_text(out, json.dumps(result, indent=1))
    logging.info("wrote %s", out)
    if args.plot:
        plot(rows, args.plot, f"blank skipping: {Path(args.exp_dir).name}, {len(refs)} utterances")
        logging.info("wrote %s", args.plot)


if __name__ == "__main__":
    run_main(main)
