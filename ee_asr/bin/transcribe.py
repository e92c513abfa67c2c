"""Transcribe audio with early exit: prints, per file, the text, the exit layer and the time.

  python -m ee_asr.bin.transcribe --exp-dir exp/<tag> --policy entropy --threshold 0.1 a.wav b.flac
  python -m ee_asr.bin.transcribe --exp-dir exp/<tag> --policy fixed --threshold 6 data/test
  python -m ee_asr.bin.transcribe --exp-dir exp/<tag> --policy seqpost --threshold 0.9 --max-layers 6 a.wav
  python -m ee_asr.bin.transcribe --exp-dir exp/<tag> --backend onnx --policy learned --threshold 0.7 a.wav

A Kaldi data dir (with wav.scp) transcribes all its recordings. A file that cannot be read gets
an error line on stderr and the others are still transcribed; the exit status is 1 then.
Decoding options (--beam-size, --ctc-weight, --lm, ...) are those of `decode`; with --lm (torch
backend only) the hypothesis at the chosen exit comes from the word LM beam. A thin face over
ee_asr.api.recognizer.Recognizer.
"""

import argparse
import sys
from pathlib import Path

from ee_asr.api.lm_options import add_lm_args
from ee_asr.api.options import add_exit_args, add_model_args, blank_skip_from_args, load_for_inference, search_name
from ee_asr.common.cli import run_main
from ee_asr.common.errors import UserError
from ee_asr.data.datadir import read_table
from ee_asr.exits.policies import ONLINE_POLICIES, check_threshold


def inputs(paths):
    for p in paths:
        if Path(p).is_dir():
            for key, spec, _ in read_table(Path(p) / "wav.scp"):
                yield key, spec
        else:
            yield p, p


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    add_exit_args(p)
    p.add_argument("--policy", default="entropy", choices=ONLINE_POLICIES)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--threshold", type=float, help="the policy's threshold (fixed: an exit layer)")
    how.add_argument("--max-wer-increase", type=float,
                     help="instead of --threshold: the threshold calibrated to keep WER within this many points of "
                          "the last exit's (bin.calibrate_exits; the export's copy with --backend onnx)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="onnx: the ee_asr/deploy/ runtime")
    p.add_argument("--onnx-dir", help="exported model for --backend onnx (default: <exp dir>/onnx)")
    add_lm_args(p)
    p.add_argument("audio", nargs="+", help="audio files or Kaldi data dirs")
    return p


def recognizer_from_args(args):
    from ee_asr.api.recognizer import Recognizer

    if args.backend == "onnx":
        if args.lm:
            raise UserError("--lm needs --backend torch: the ONNX runtime has no LM beam")
        onnx_dir = Path(args.onnx_dir) if args.onnx_dir else Path(args.exp_dir) / "onnx"
        if search_name(args) == "joint" or args.rescore_skip:
            raise UserError("--backend onnx decodes greedily or with --search rescore (no joint beam, no "
                            "--rescore-skip): use --backend torch")
        rescoring = ({"nbest_size": args.rescore_nbest, "ctc_weight": args.rescore_weight,
                      "length_bonus": args.length_bonus} if search_name(args) == "rescore" else None)
        return Recognizer.from_onnx(onnx_dir, args.policy, args.threshold, args.max_layers, args.nbest_size,
                                    num_threads=args.num_threads, max_wer_increase=args.max_wer_increase,
                                    rescoring=rescoring, blank_skip=blank_skip_from_args(args))
    # torch: imported after the arguments are known good
    from ee_asr.api.options import engine_from_args
    from ee_asr.api.recognizer import experiment_threshold
    from ee_asr.exits.exit_classifier import load_for_experiment

    threshold = experiment_threshold(args.policy, args.threshold, args.max_wer_increase, args.exp_dir)
    model, config = load_for_inference(args)
    classifier = load_for_experiment(args.exp_dir) if args.policy == "learned" else None
    engine = engine_from_args(args, model, config, classifier)
    return Recognizer.from_engine(engine, config, args.policy, threshold, args.max_layers, args.device)


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.threshold is not None:
        check_threshold(args.policy, args.threshold)
    rec = recognizer_from_args(args)
    failed = 0
    for name, spec in inputs(args.audio):
        try:
            r = rec.transcribe_one(spec, name)
        except UserError as e:
            print(f"ERROR {name}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}\t{r.text}\texit={r.exit}\t{r.seconds:.3f}s", flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    run_main(main)
