"""Per exit of an early-exit AED: greedy CTC, the joint CTC/attention beam and attention rescoring,
each decoding everything at that fixed exit, timed in one interleaved run and scored, with the
paired bootstrap of rescoring against the joint beam.

  python -m ee_asr.bin.benchmark_searches --exp-dir exp/<aed> --data-dir dump/fbank/test \\
      --beam-size 5 --ctc-weight 0.5 --pre-beam-ratio 0 --rescore-nbest 10 --rescore-weight 0.5 \\
      [--ctc-exp-dir ../conformer_ctc_ee/exp/<ctc>]   # also time that model's greedy last exit

Prints a markdown table and writes JSON (default <exp-dir>/benchmark_searches.json): `rows`
({exit, search, seconds, wer, ratio_to_joint, ratio_to_last_exit}) and `paired` (rescore minus
joint per exit, with its 95% interval). Ratios: against the joint beam at the same exit, and
against the same search at the last exit; the search "encoder only" (the bare encoder up to the
exit) gives the ideal ratios.
"""

import argparse
import json
import logging
from pathlib import Path

import torch

from ee_asr.api.options import parse_skip
from ee_asr.benchmark.policy_speed import load_batches
from ee_asr.benchmark.search_speed import time_searches
from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import UserError
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.attention_rescoring import AttentionRescoring
from ee_asr.decode.joint_beam import JointBeamSearch
from ee_asr.decode.torch_backend import NBEST_TOKEN_BEAM, torch_engine
from ee_asr.exits.policies import Policy
from ee_asr.models.load import load_trained
from ee_asr.score.compare import paired_difference

SEARCHES = ("greedy", "joint", "rescore")


def get_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp-dir", required=True, help="an AED experiment dir (model: aed_ee)")
    ap.add_argument("--model-file", default="model.pth")
    ap.add_argument("--data-dir", required=True, help="dump dir with feats.scp, utt2num_frames, text")
    ap.add_argument("--searches", nargs="+", default=list(SEARCHES), choices=SEARCHES)
    ap.add_argument("--exits", type=int, nargs="*", default=None, help="default: every exit")
    ap.add_argument("--beam-size", type=int, default=5, help="the joint beam's width")
    ap.add_argument("--ctc-weight", type=float, default=0.5, help="the joint beam's CTC weight")
    ap.add_argument("--pre-beam-ratio", type=float, default=0.0, help="the joint beam's pre-beam (0: none)")
    ap.add_argument("--rescore-nbest", type=int, default=10)
    ap.add_argument("--rescore-weight", type=float, default=0.5, help="rescoring: CTC weight")
    ap.add_argument("--length-bonus", type=float, default=0.0)
    ap.add_argument("--rescore-skip", default=None, metavar="SCORE:THRESHOLD")
    ap.add_argument("--token-beam", type=int, default=NBEST_TOKEN_BEAM, help="the CTC N-best's tokens per frame")
    ap.add_argument("--ctc-exp-dir", default=None, help="also time this CTC experiment's greedy last exit")
    ap.add_argument("--max-utts", type=int, default=None)
    ap.add_argument("--batch-bins", type=int, default=40000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--num-threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--output", default=None)
    return ap


def make_searches(args, model):
    """{search name: the exit engine decoding with it}."""
    out = {}
    for name in args.searches:
        if name == "greedy":
            search = None
        elif name == "joint":
            search = JointBeamSearch(model, args.beam_size, args.ctc_weight, pre_beam_ratio=args.pre_beam_ratio)
        else:
            search = AttentionRescoring(model, args.rescore_nbest, args.rescore_weight, args.length_bonus,
                                        args.token_beam, parse_skip(args.rescore_skip))
        out[name] = torch_engine(model, search=search)
    return out


def add_ratios(rows):
    by = {(r["exit"], r["search"]): r for r in rows}
    last = max(r["exit"] for r in rows if r["exit"] is not None)
    for r in rows:
        if r["exit"] is None:
            continue
        joint = by.get((r["exit"], "joint"))
        r["ratio_to_joint"] = r["seconds"] / joint["seconds"] if joint else None
        r["ratio_to_last_exit"] = r["seconds"] / by[(last, r["search"])]["seconds"]


def print_table(rows, paired):
    print("|exit|search|seconds|WER|time / joint at the exit|time / same search at the last exit|")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r["exit"] is None or "wer" not in r:
            last = "-" if r["exit"] is None else f"{r['ratio_to_last_exit']:.3f}"
            print(f"|{r['exit'] or '-'}|{r['search']}|{r['seconds']:.2f}|-|-|{last}|")
            continue
        ratio = "-" if r["ratio_to_joint"] is None else f"{r['ratio_to_joint']:.3f}"
        print(f"|{r['exit']}|{r['search']}|{r['seconds']:.2f}|{r['wer']:.2f}|{ratio}|{r['ratio_to_last_exit']:.3f}|")
    if paired:
        print("\n|exit|rescore minus joint (WER)|95% paired interval|\n|---|---|---|")
        for p in paired:
            print(f"|{p['exit']}|{p['difference']:+.2f}|{p['interval'][0]:+.2f} .. {p['interval'][1]:+.2f}|")


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.num_threads)
    model, config = load_trained(args.exp_dir, args.model_file, device=args.device)
    if "joint" in args.searches or "rescore" in args.searches:
        if not hasattr(model, "decoders"):
            raise UserError(f"{args.exp_dir} is not an AED (model: aed_ee): no joint beam or rescoring to time")
    exits = args.exits or list(model.encoder.exit_layers)
    bad = [e for e in exits if e not in model.encoder.exit_layers]
    if bad:
        raise UserError(f"--exits {bad} are not exits of the model ({model.encoder.exit_layers})")
    tokenizer = Tokenizer(config["bpemodel"])
    dataset = FeatureDataset(args.data_dir, tokenizer)
    batches = load_batches(dataset, args.batch_bins, args.max_utts, args.device)
    extra = {}
    if args.ctc_exp_dir:
        ctc, _ = load_trained(args.ctc_exp_dir, device=args.device)
        last = ctc.encoder.exit_layers[-1]
        ctc_engine = torch_engine(ctc)
        extra[f"greedy, {Path(args.ctc_exp_dir).name} exit {last}"] = (
            lambda x, xl: ctc_engine.decode((x, xl), Policy("fixed", last)))
    logging.info("timing %s at exits %s on %d utterances, %d repeats", ", ".join(args.searches), exits,
                 sum(len(b[0]) for b in batches), args.repeats)
    refs = {u: dataset.text[u] for b in batches for u in b[0]}
    rows, errors = time_searches(model, batches, make_searches(args, model), exits, args.repeats,
                                 tokenizer.decode, refs, extra)
    add_ratios(rows)
    paired = []
    if "joint" in args.searches and "rescore" in args.searches:
        for e in exits:
            diff, interval = paired_difference(errors[(e, "rescore")], errors[(e, "joint")])
            paired.append({"exit": e, "difference": diff, "interval": interval})
    print_table(rows, paired)
    result = {"exp_dir": str(args.exp_dir), "data_dir": str(args.data_dir), "utterances": len(refs),
              "threads": args.num_threads, "repeats": args.repeats, "options": vars(args), "rows": rows,
              "paired": paired}
    out = Path(args.output or Path(args.exp_dir) / "benchmark_searches.json")
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    logging.info("wrote %s", out)


if __name__ == "__main__":
    run_main(main)
