"""Calibrated exit thresholds: "at most ε WER points worse than the last exit, with confidence 1 - δ".

  python -m ee_asr.bin.calibrate_exits exp/<tag>/decode_dev/exits.jsonl --policy entropy fixed \\
      --max-wer-increase 0.5 1 2 --confidence 0.9
  python -m ee_asr.bin.calibrate_exits <wav2vec2-ee>/wer_results/fixed_ee_finetuning/epoch_40 \\
      --sets test_clean=1-2620 --policy entropy --max-wer-increase 1 --output calibration.json

For each policy and ε, picks on the calibration set the threshold of least compute whose WER
increase over the last exit is <= ε with probability >= the confidence, by Learn-then-Test with
betting p-values (ee_asr/score/calibration.py states the risk, the method and its assumptions:
calibration and test utterances exchangeable). Writes calibration.json (default: the
experiment dir: the nearest one above the scores file holding config.yaml, else two levels up) and
prints a table. A policy that no threshold certifies answers at the last exit.
"""

import argparse
import json
from pathlib import Path

from ee_asr.api.calibration_options import add_input_options, read_inputs
from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main
from ee_asr.common.errors import UserError
from ee_asr.exits.policies import ONLINE_POLICIES
from ee_asr.score.calibration import CALIBRATION_FILE, calibrate, calibration_document


def experiment_dir(scores):
    """exp/<tag>/decode_<set>/exits.jsonl -> exp/<tag> (the dir with config.yaml), else two levels up."""
    parents = Path(scores).resolve().parents
    return next((d for d in parents if (d / "config.yaml").is_file()), parents[1])


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", help="exits.jsonl of the calibration set, or a wav2vec2-ee results dir")
    p.add_argument("--policy", nargs="+", required=True, choices=ONLINE_POLICIES)
    p.add_argument("--max-wer-increase", type=float, nargs="+", required=True, metavar="EPS",
                   help="WER points the policy may add to the last exit's WER")
    p.add_argument("--confidence", type=float, default=0.9, help="1 - δ: probability the promise holds")
    p.add_argument("--thresholds", type=float, nargs="+", default=None,
                   help="candidate thresholds (default: a fixed fine grid per policy; fixed: the exits)")
    p.add_argument("--seed", type=int, default=0, help="the order in which the betting test reads the utterances")
    p.add_argument("--output", default=None, help="default: <experiment dir>/calibration.json")
    add_input_options(p)
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    path = Path(args.scores)
    tables = read_inputs(args, path)
    if len(tables) != 1:
        raise UserError(f"{path}: calibrate on one set; name it with --sets NAME=FIRST-LAST "
                        f"(this dir has {', '.join(tables)})")
    if path.is_dir() and args.output is None:
        raise UserError(f"{path} is a results dir: name the calibration file with --output")
    (table,) = tables.values()
    entries = [calibrate(table, policy, eps, args.confidence, args.thresholds, args.seed)
               for policy in args.policy for eps in args.max_wer_increase]
    out = Path(args.output) if args.output else experiment_dir(path) / CALIBRATION_FILE
    atomic_write_text(out, json.dumps(calibration_document(entries, path), indent=1) + "\n")
    print(f"|policy|ε|threshold|{table.name}: WER increase|mean exit|compute|\n|---|---|---|---|---|---|")
    for e in entries:
        t = "last exit" if e["threshold"] is None else f"{e['threshold']:.4g}"
        print(f"|{e['policy']}|{e['max_wer_increase']:g}|{t}|{e['wer_increase']:+.2f}|{e['mean_exit']:.2f}|"
              f"{e['compute_ratio']:.3f}|")
    print(f"wrote {out}; the promise assumes calibration and test utterances exchangeable (its 'assumptions')")


if __name__ == "__main__":
    run_main(main)
