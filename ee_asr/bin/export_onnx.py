"""Export an early-exit Conformer-CTC experiment to ONNX: one graph per exit segment, a manifest
and the token model, for the torch-free runtime in ee_asr/deploy/ (and `transcribe --backend onnx`).

  python -m ee_asr.bin.export_onnx --exp-dir exp/<tag> [--int8 --data-dir dump/test] [--sherpa-exit 6]

--int8 adds MatMul-only int8 graphs; with --data-dir (a dump dir: feats.scp and text) their CER at
every exit is compared with fp32 in <output>/RESULTS.md, and the export fails (exit 2, int8 graphs
removed) when any exit loses more than --max-cer-increase points, unless --force.
--sherpa-exit L writes <output>/sherpa_exitL/{model.onnx,tokens.txt} for sherpa-onnx's offline
zipformer-CTC recogniser.
<exp-dir>/exit_classifier.json (ee_asr.bin.fit_exit_classifier), when there, is copied with the
graphs: the runtime's `learned` policy reads it.
"""

import argparse

from ee_asr.common.cli import add_renamed_options, run_main, setup_logging
from ee_asr.common.errors import UserError


def parse_thresholds(specs):
    out = {}
    for spec in specs or []:
        policy, _, value = spec.partition(":")
        try:
            out[policy] = float(value)
        except ValueError:
            raise UserError(f"bad --threshold '{spec}': expected <policy>:<value>") from None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp-dir", required=True, help="experiment dir with config.yaml and the model")
    ap.add_argument("--model-file", default="model.pth")
    ap.add_argument("--output", help="output dir (default: <exp-dir>/onnx)")
    ap.add_argument("--int8", action="store_true", help="also write int8 (MatMul-only, per-channel) graphs")
    ap.add_argument("--data-dir", help="dump dir (feats.scp, text) for the int8 CER check")
    ap.add_argument("--max-utts", type=int, help="use at most this many utterances of --data-dir")
    ap.add_argument("--max-cer-increase", type=float, default=1.0, help="CER points int8 may lose at any exit")
    ap.add_argument("--force", action="store_true", help="keep int8 graphs that lose more than that")
    ap.add_argument("--sherpa-exit", type=int, nargs="*", default=[], help="exits to export for sherpa-onnx")
    ap.add_argument("--sherpa-int16-samples", action="store_true",
                    help="sherpa graphs for FeatureExtractorConfig(normalize_samples=False): features identical "
                         "to ee-asr's (the default graphs suit sherpa's default [-1, 1] samples)")
    ap.add_argument("--threshold", nargs="*", help="default thresholds for the manifest, e.g. entropy:0.05")
    ap.add_argument("--max-frames", type=int, help="longest input in 10 ms frames (default: 4999 subsampled frames)")
    ap.add_argument("--rescore-nbest", type=int, default=10,
                    help="an AED's attention rescoring: CTC hypotheses per utterance (the manifest's default for "
                         "the runtime, and what the checks rescore with)")
    ap.add_argument("--rescore-weight", type=float, default=0.5, help="an AED's attention rescoring: CTC weight")
    ap.add_argument("--length-bonus", type=float, default=0.0, help="an AED's attention rescoring: score per token")
    add_renamed_options(ap, {"--exp": "--exp-dir", "--data": "--data-dir", "--out": "--output",
                             "--output-dir": "--output"})
    args = ap.parse_args(argv)
    setup_logging()
    from ee_asr.export.pipeline import export_experiment  # torch is imported only past --help

    manifest = export_experiment(args.exp_dir, args.output, args.model_file, args.int8, args.data_dir, args.max_utts,
                                 args.max_cer_increase, args.force, args.sherpa_exit,
                                 parse_thresholds(args.threshold), args.max_frames, args.sherpa_int16_samples,
                                 {"nbest_size": args.rescore_nbest, "ctc_weight": args.rescore_weight,
                                  "length_bonus": args.length_bonus})
    print(f"exported exits {manifest['exit_layers']}")


if __name__ == "__main__":
    run_main(main)
