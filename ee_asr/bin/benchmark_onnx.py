"""Benchmark an exported early-exit model: PyTorch eager vs ONNX Runtime fp32 vs int8 per exit,
graph size per exit depth, peak RSS of a process loading segments 1..k, dynamic policies.

  python -m ee_asr.bin.benchmark_onnx --exp-dir exp/<tag> --data-dir dump/test --output bench.json
  python -m ee_asr.bin.benchmark_onnx --config conf/train_conformer_ctc_ee.yaml --output paper.json

With --config, a random-weight model of that shape is built and exported (int8 too) beside the
output; timing then uses one 10 s input of random features. Writes FILE.json and FILE.md.
"""

import argparse
from pathlib import Path

from ee_asr.common.cli import add_renamed_options, run_main, setup_logging
from ee_asr.common.errors import UserError


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp-dir", help="experiment dir (exported with export_onnx)")
    ap.add_argument("--onnx-dir", help="exported model (default: <exp-dir>/onnx)")
    ap.add_argument("--config", help="a training config to time with random weights instead of --exp-dir")
    ap.add_argument("--vocab-size", type=int, default=5000, help="with --config: width of the CTC heads")
    ap.add_argument("--data-dir", help="dump dir (feats.scp, text) whose utterances are timed")
    ap.add_argument("--max-utts", type=int, default=20)
    ap.add_argument("--grid", nargs="*", help="policies to time, e.g. entropy:0.02,0.05 (default: asr.sh's grid)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model-file", default="model.pth")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    ap.add_argument("--output", required=True, help="JSON file (a .md table is written beside it)")
    add_renamed_options(ap, {"--exp": "--exp-dir", "--data": "--data-dir", "--out": "--output"})
    args = ap.parse_args(argv)
    setup_logging()
    if bool(args.exp_dir) == bool(args.config):
        raise UserError("give either --exp-dir or --config")
    from ee_asr.benchmark.onnx_speed import run_benchmark

    exp_dir, what = args.exp_dir, args.exp_dir
    if args.config:
        from ee_asr.export.pipeline import export_experiment
        from ee_asr.export.random_exp import make_random_exp

        exp_dir = make_random_exp(args.config, Path(args.output).with_suffix(".exp"), args.vocab_size)
        export_experiment(exp_dir, int8=True)
        what = f"{args.config} with random weights, vocabulary {args.vocab_size}"
    onnx_dir = args.onnx_dir or Path(exp_dir) / "onnx"
    report = run_benchmark(exp_dir, onnx_dir, args.output, args.data_dir, args.max_utts, args.repeats,
                           args.model_file, what, rss=not args.no_rss, grid=args.grid)
    print(Path(args.output).with_suffix(".md").read_text())
    return report


if __name__ == "__main__":
    run_main(main)
