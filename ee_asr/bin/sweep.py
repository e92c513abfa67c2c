"""Offline exit selection over a per-utterance, per-exit scores file (JSON lines).

  python -m ee_asr.bin.sweep exp/<tag>/decode_test/exits.jsonl --policy entropy --thresholds 0.05 0.1 0.2

Each line needs `utt`, `exit`, `ref_words`, `errors` and the policy's score (`entropy`,
`maxprob` or `nbest_posterior`); `fixed` takes exit layers as thresholds (default: every exit),
`oracle` none. Prints the table and writes it as <out>.md and <out>.json.
"""

import argparse
import json
from pathlib import Path

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main
from ee_asr.exits.policies import ALL_POLICIES
from ee_asr.exits.sweep import markdown_table, sweep
from ee_asr.score.tables import read_jsonl


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", help="JSON-lines file, one line per utterance and exit")
    p.add_argument("--policy", required=True, choices=ALL_POLICIES)
    p.add_argument("--thresholds", type=float, nargs="*", default=None)
    p.add_argument("--output", default=None, help="output prefix (default: <scores dir>/sweep_<policy>)")
    args = p.parse_args(argv)
    points = sweep(read_jsonl(args.scores), args.policy, args.thresholds)
    table = markdown_table(points)
    out = Path(args.output or Path(args.scores).parent / f"sweep_{args.policy}")
    atomic_write_text(f"{out}.md", table)
    atomic_write_text(f"{out}.json", json.dumps(points, indent=1))
    print(table, end="")


if __name__ == "__main__":
    run_main(main)
