"""Offline exit selection over a per-utterance, per-exit scores file (JSON lines).

  python -m ee_asr.bin.sweep exp/<tag>/decode_test/exits.jsonl --policy entropy --threshold 0.05 0.1 0.2
  python -m ee_asr.bin.sweep exp/<tag>/decode_test/exits.jsonl --policy learned --threshold 0.5 0.8 \\
      --classifier exp/<tag>/exit_classifier.json --max-layers 8

Each line needs `utt`, `exit`, `ref_words`, `errors` and the policy's score (`entropy`,
`maxprob`, `nbest_posterior`, `seq_posterior`, `disagreement`, or `p_as_good`, which
--classifier computes from the other scores); `fixed` and `budget` take exit layers as
thresholds (default: every exit), `oracle` none. A bad line is reported with its file and line
number. Prints the table and writes <output>.json, then <output>.md.
"""

import argparse
import json
from pathlib import Path

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import add_renamed_options, run_main
from ee_asr.exits.exit_classifier import ExitClassifier, add_predictions
from ee_asr.exits.policies import ALL_POLICIES
from ee_asr.score.sweep import markdown_table, sweep
from ee_asr.score.sweep_input import read_sweep_records


def write_pair(prefix, points, table):
    """The .json, then the .md; if the .md cannot be written the .json is removed again, so a
    failure never leaves one without the other (each file itself is written atomically)."""
    json_path, md_path = Path(f"{prefix}.json"), Path(f"{prefix}.md")
    atomic_write_text(json_path, json.dumps(points, indent=1))
    try:
        atomic_write_text(md_path, table)
    except BaseException:
        json_path.unlink(missing_ok=True)
        raise


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", help="JSON-lines file, one line per utterance and exit")
    p.add_argument("--policy", required=True, choices=ALL_POLICIES)
    p.add_argument("--threshold", type=float, nargs="*", default=None)
    p.add_argument("--max-layers", type=int, default=None,
                   help="layer budget: no utterance goes past the deepest exit within it")
    p.add_argument("--classifier", default=None, help="exit_classifier.json, for the learned policy's p_as_good")
    p.add_argument("--output", default=None, help="output prefix (default: <scores dir>/sweep_<policy>)")
    add_renamed_options(p, {"--out": "--output", "--thresholds": "--threshold"})
    args = p.parse_args(argv)
    records = read_sweep_records(args.scores)
    if args.classifier:
        add_predictions(records, ExitClassifier.load(args.classifier))
    points = sweep(records, args.policy, args.threshold, args.max_layers, source=args.scores)
    table = markdown_table(points)
    write_pair(args.output or Path(args.scores).parent / f"sweep_{args.policy}", points, table)
    print(table, end="")


if __name__ == "__main__":
    run_main(main)
