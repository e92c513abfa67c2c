"""Fit the exit classifier of the `learned` policy after training, and store it in the experiment.

  python -m ee_asr.bin.fit_exit_classifier --exp-dir exp/<tag> --data-dir dump/dev
  python -m ee_asr.bin.fit_exit_classifier --exp-dir exp/<tag> --data-dir dump/dev \
      --group-regex '([a-z]+[0-9]*)-p[0-9]+-s'

Decodes the data dir at every exit (greedy CTC; kept in <exp-dir>/exit_classifier_data/<set>/
and reused when present), labels each exit below the last "as good as the last" when it has no
more word errors than the last exit, and fits logistic regression on the exit's scores
(exits/exit_classifier.py). The L2 penalty is chosen by cross-validation that holds out whole
groups of speakers: by default each speaker (utt2spk) is a group; --group-regex groups speakers
by the regex's first group (e.g. the voice variant of the mini corpus, whose test set holds out
variants). Writes <exp-dir>/exit_classifier.json (or --output).
"""

import argparse
import logging
import re
from pathlib import Path

from ee_asr.api.options import load_for_inference
from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main
from ee_asr.common.errors import UserError
from ee_asr.data.datadir import read_table
from ee_asr.decode.decode_exits import decode_all_exits
from ee_asr.decode.torch_backend import torch_engine
from ee_asr.exits.exit_classifier import CLASSIFIER_FILE, ExitClassifier
from ee_asr.score.sweep import group_by_utterance
from ee_asr.score.sweep_input import read_sweep_records


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="experiment dir with config.yaml and the weights")
    p.add_argument("--data-dir", required=True, nargs="+",
                   help="dump dir(s) with feats.scp, text, utt2spk: not the test set (e.g. the dev set)")
    p.add_argument("--model-file", default="model.pth")
    p.add_argument("--batch-bins", type=int, default=40000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--group-regex", default=None,
                   help="cross-validation groups: the first regex group of the speaker id (default: the speaker)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds over the groups")
    p.add_argument("--output", default=None, help=f"default: <exp-dir>/{CLASSIFIER_FILE}")
    return p


def speaker_groups(data_dir, regex):
    path = Path(data_dir) / "utt2spk"
    if not path.is_file():
        raise UserError(f"{path} is missing: the classifier is cross-validated over speakers")
    groups = {}
    for utt, spk, _ in read_table(path):
        m = re.search(regex, spk) if regex else None  # a speaker it does not match is its own group
        groups[utt] = (m.group(1) if m.groups() else m.group(0)) if m else spk
    return groups


def main(argv=None):
    args = get_parser().parse_args(argv)
    args.beam_size = 0
    model, config = load_for_inference(args)
    rows = []
    for data_dir in args.data_dir:
        out = Path(args.exp_dir) / "exit_classifier_data" / Path(data_dir).name
        scores = out / "exits.jsonl"
        if not scores.is_file() or scores.stat().st_mtime < (Path(args.exp_dir) / args.model_file).stat().st_mtime:
            # the classifier reads no N-best posterior (K = 0: none computed)
            decode_all_exits(torch_engine(model, nbest_size=0), config, data_dir, out, args.batch_bins, args.device)
        by_utt, exits = group_by_utterance(read_sweep_records(scores), str(scores))
        groups = speaker_groups(data_dir, args.group_regex)
        for utt, per_exit in by_utt.items():
            last = per_exit[exits[-1]]["errors"]
            for layer, r in per_exit.items():
                rows.append((r, layer, r["errors"] <= last, groups.get(utt, utt)))
    clf = ExitClassifier.fit(rows, list(model.encoder.exit_layers), args.folds)
    out = Path(args.output or Path(args.exp_dir) / CLASSIFIER_FILE)
    atomic_write_text(out, clf.to_json())
    i = clf.info
    logging.info("exit classifier: %d rows (%.0f%% as good as the last), %d groups in %d folds, penalty %g, "
                 "held-out-group log loss %s vs %.3f for the prior; wrote %s", i["rows"], 100 * i["positive_share"],
                 i["groups"], i["folds"], i["penalty"], i["cv_log_loss"].get(f"{i['penalty']:g}", "-"),
                 i["prior_log_loss"], out)


if __name__ == "__main__":
    run_main(main)
