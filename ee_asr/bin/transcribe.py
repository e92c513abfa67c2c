"""Transcribe audio with early exit: prints, per file, the text, the exit layer and the time.

  python -m ee_asr.bin.transcribe --exp-dir exp/<tag> --policy entropy --threshold 0.1 a.wav b.flac
  python -m ee_asr.bin.transcribe --exp-dir exp/<tag> --policy fixed --threshold 6 data/test
  python -m ee_asr.bin.transcribe --exp-dir exp/<tag> --policy seqpost --threshold 0.9 --max-layers 6 a.wav

A Kaldi data dir (with wav.scp) transcribes all its recordings. A file that cannot be read gets
an error line on stderr and the others are still transcribed; the exit status is 1 then.
Decoding options (--beam-size, --ctc-weight, --lm, ...) are those of `decode`; with --lm (torch
backend only) the hypothesis at the chosen exit comes from the word LM beam.
"""

import argparse
import sys
from pathlib import Path

from ee_asr.bin.inference_args import add_model_args, load_for_inference, make_search
from ee_asr.bin.lm_args import add_lm_args, make_lm_search
from ee_asr.common.cli import run_main
from ee_asr.common.errors import UserError
from ee_asr.data.datadir import read_table
from ee_asr.exits.policies import ONLINE_POLICIES


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
    p.add_argument("--policy", default="entropy", choices=ONLINE_POLICIES)
    p.add_argument("--threshold", type=float, required=True)
    p.add_argument("--nbest-size", type=int, default=10, help="N-best size K for the nbest policy")
    p.add_argument("--max-layers", type=int, default=None,
                   help="layer budget per request: the deepest exit within it answers at the latest (any policy)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="onnx: the ee_asr/deploy/ runtime")
    p.add_argument("--onnx-dir", help="exported model for --backend onnx (default: <exp dir>/onnx)")
    add_lm_args(p)
    p.add_argument("audio", nargs="+", help="audio files or Kaldi data dirs")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.backend == "onnx":
        if args.lm:
            raise UserError("--lm needs --backend torch: the ONNX runtime has no LM beam")
        from ee_asr.deploy.transcribe import transcriber_from_args  # onnxruntime, never torch

        t = transcriber_from_args(args)
    else:
        # torch: imported after the arguments are known good
        from ee_asr.decode.transcribe import Transcriber
        from ee_asr.exits.exit_classifier import load_for_experiment

        model, config = load_for_inference(args)
        classifier = load_for_experiment(args.exp_dir) if args.policy == "learned" else None
        search = (make_lm_search(args, model, config, args.nbest_size, classifier)
                  or make_search(args, model, args.nbest_size, classifier))
        t = Transcriber(model, config, args.policy, args.threshold, args.nbest_size, args.device, args.max_layers,
                        search)
    failed = 0
    for name, spec in inputs(args.audio):
        try:
            r = t.transcribe(spec)
        except UserError as e:
            print(f"ERROR {name}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}\t{r['text']}\texit={r['exit']}\t{r['seconds']:.3f}s", flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    run_main(main)
