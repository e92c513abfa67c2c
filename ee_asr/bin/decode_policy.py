"""Decode with an exit-selection policy, computing only the layers up to each chosen exit.

  python -m ee_asr.bin.decode_policy --exp-dir exp/<tag> --data-dir dump/test \\
      --policy entropy --threshold 0.05 0.1 0.2
  python -m ee_asr.bin.decode_policy --exp-dir exp/<tag> --data-dir dump/test \\
      --grid fixed:2,4,6 entropy:0.05,0.1 nbest:0.8      # several policies, one model load
  python -m ee_asr.bin.decode_policy ... --grid seqpost:0.5,0.9 budget:4,6 --max-layers 8

Policies (exits/policies.py): fixed and budget take layer numbers; entropy, maxprob, nbest
(--nbest-size K), seqpost, agree (max normalised edit distance to the exit below) and learned
(the exit classifier <exp-dir>/exit_classifier.json, from ee_asr.bin.fit_exit_classifier) take
score thresholds.

With --lm (an ARPA LM from ee_asr.bin.build_lm) an utterance's hypothesis at its exit comes from
the word LM beam, the policies read the CTC scores as without it (nbest: the LM beam's N-best).

Writes <exp-dir>/decode_<set>[_lm]/policy_<policy>/thr_<threshold>[_max<L>]/{results.jsonl,summary.json}.
"""

import argparse
import logging
from pathlib import Path

from ee_asr.api.lm_options import add_lm_args, lm_output_suffix
from ee_asr.api.options import add_inference_args, blank_skip_suffix, engine_from_args, load_for_inference
from ee_asr.common.cli import run_main
from ee_asr.common.errors import UserError
from ee_asr.decode.policy_decode import PolicyDecoder
from ee_asr.decode.split import read_utt_list
from ee_asr.exits.exit_classifier import load_for_experiment
from ee_asr.exits.policies import ONLINE_POLICIES, check_threshold, parse_grid


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inference_args(p)
    p.add_argument("--policy", choices=ONLINE_POLICIES)
    p.add_argument("--threshold", type=float, nargs="+",
                   help="for fixed: exit layers; else the policy's threshold")
    p.add_argument("--grid", nargs="+", metavar="POLICY:T1[,T2...]",
                   help="instead of --policy/--threshold: several policies in one run")
    p.add_argument("--utt-list", default=None,
                   help="decode only these utterances (one job of a split decode; see ee_asr.bin.split_decode)")
    p.add_argument("--output", default=None, help="default: <exp-dir>/decode_<data-dir name>[_lm]")
    add_lm_args(p)
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if (args.grid is None) == (args.policy is None) or (args.policy is None) != (args.threshold is None):
        raise UserError("give either --grid, or --policy with --threshold")
    grid = parse_grid(args.grid) if args.grid else [
        (args.policy, [check_threshold(args.policy, t) for t in args.threshold])]
    keep = read_utt_list(args.utt_list, args.data_dir)  # before the model load: a bad list fails fast
    model, config = load_for_inference(args)
    classifier = load_for_experiment(args.exp_dir) if any(policy == "learned" for policy, _ in grid) else None
    decoder = PolicyDecoder(engine_from_args(args, model, config, classifier), config, args.data_dir,
                            args.batch_bins, args.device, args.max_layers, keep=keep)
    out = Path(args.output or Path(args.exp_dir) / f"decode_{Path(args.data_dir).name}{lm_output_suffix(args)}"
                                                   f"{blank_skip_suffix(args)}")
    for policy, thresholds in grid:
        for t in thresholds:
            cap = "" if args.max_layers is None else f"_max{args.max_layers}"
            s, _ = decoder.decode(out / f"policy_{policy}" / f"thr_{t:g}{cap}", policy, t)
            logging.info("%s %g: WER %.2f%%, mean exit %.2f, compute %.3f, %.2fs", s["policy"], t, s["wer"],
                         s["mean_exit"], s["compute_ratio"], s["seconds"])


if __name__ == "__main__":
    run_main(main)
