"""Transcribe audio with early exit: prints, per file, the text, the exit layer and the time.

  python -m ee_asr.bin.transcribe --exp exp/<tag> --policy entropy --threshold 0.1 a.wav b.flac
  python -m ee_asr.bin.transcribe --exp exp/<tag> --policy fixed --threshold 6 data/test
  python -m ee_asr.bin.transcribe --exp exp/<tag> --policy seqpost --threshold 0.9 --max-layers 6 a.wav

A Kaldi data dir (with wav.scp) transcribes all its recordings. A file that cannot be read gets
an error line on stderr and the others are still transcribed; the exit status is 1 then.
"""

import argparse
import sys
from pathlib import Path

import torch

from ee_asr.common.cli import run_main
from ee_asr.common.errors import UserError
from ee_asr.data.datadir import read_table
from ee_asr.decode.exit_search import ExitSearch
from ee_asr.decode.transcribe import Transcriber
from ee_asr.exits.exit_classifier import load_for_experiment
from ee_asr.exits.policies import ONLINE_POLICIES
from ee_asr.models.load import load_trained


def inputs(paths):
    for p in paths:
        if Path(p).is_dir():
            for key, spec, _ in read_table(Path(p) / "wav.scp"):
                yield key, spec
        else:
            yield p, p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp", required=True, help="experiment dir with config.yaml and model.pth")
    ap.add_argument("--policy", default="entropy", choices=ONLINE_POLICIES)
    ap.add_argument("--threshold", type=float, required=True)
    ap.add_argument("--beam", type=int, default=10)
    ap.add_argument("--max-layers", type=int, default=None,
                    help="layer budget per request: the deepest exit within it answers at the latest (any policy)")
    ap.add_argument("--model-file", default="model.pth")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--num-threads", type=int, default=1)
    ap.add_argument("audio", nargs="+", help="audio files or Kaldi data dirs")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.num_threads)
    model, config = load_trained(args.exp, args.model_file, args.device)
    classifier = load_for_experiment(args.exp) if args.policy == "learned" else None
    t = Transcriber(model, config, args.policy, args.threshold, args.beam, args.device, args.max_layers,
                    ExitSearch(model, args.beam, classifier=classifier))
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
