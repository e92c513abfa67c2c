"""Choose attention rescoring's N-best size, CTC weight and length bonus on a dev set:

  python -m ee_asr.bin.tune_rescoring --exp-dir exp/<aed> --data-dir dump/fbank/dev \\
      --nbest 5 10 --ctc-weight 0.3 0.5 0.7 --length-bonus 0 0.5

Prints WER per exit and grid point, and the point with the lowest WER over all exits; writes
JSON (default <exp-dir>/tune_rescoring.json) with `rows` and `best`.
"""

import argparse
import json
from pathlib import Path

import torch

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import UserError
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.rescoring_grid import best_point, rescoring_grid
from ee_asr.models.load import load_trained


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp-dir", required=True, help="an AED experiment dir (model: aed_ee)")
    ap.add_argument("--model-file", default="model.pth")
    ap.add_argument("--data-dir", required=True, help="dev dump dir with feats.scp, utt2num_frames, text")
    ap.add_argument("--nbest", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--ctc-weight", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--length-bonus", type=float, nargs="+", default=[0.0])
    ap.add_argument("--token-beam", type=int, default=5)
    ap.add_argument("--batch-bins", type=int, default=40000)
    ap.add_argument("--num-threads", type=int, default=1)
    ap.add_argument("--output", default=None)
    args = ap.parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.num_threads)
    model, config = load_trained(args.exp_dir, args.model_file)
    if not hasattr(model, "decoders"):
        raise UserError(f"{args.exp_dir} is not an AED (model: aed_ee): nothing to rescore with")
    tokenizer = Tokenizer(config["bpemodel"])
    rows = rescoring_grid(model, FeatureDataset(args.data_dir, tokenizer), tokenizer.decode, args.nbest,
                          args.ctc_weight, args.length_bonus, args.batch_bins, args.token_beam)
    exits = sorted({r["exit"] for r in rows})
    points = sorted({(r["nbest"], r["ctc_weight"], r["length_bonus"]) for r in rows})
    wer = {(r["exit"], r["nbest"], r["ctc_weight"], r["length_bonus"]): r["wer"] for r in rows}
    print("|N|CTC weight|length bonus|" + "|".join(f"exit {e}" for e in exits) + "|")
    print("|---" * (3 + len(exits)) + "|")
    for p in points:
        print(f"|{p[0]}|{p[1]:g}|{p[2]:g}|" + "|".join(f"{wer[(e, *p)]:.2f}" for e in exits) + "|")
    best = best_point(rows)
    print(f"\nbest over all exits: --rescore-nbest {best[0]} --rescore-weight {best[1]:g} --length-bonus {best[2]:g}")
    out = Path(args.output or Path(args.exp_dir) / "tune_rescoring.json")
    atomic_write_text(out, json.dumps({"exp_dir": str(args.exp_dir), "data_dir": str(args.data_dir), "rows": rows,
                                       "best": dict(zip(("nbest", "ctc_weight", "length_bonus"), best))},
                                      indent=1) + "\n")


if __name__ == "__main__":
    run_main(main)
