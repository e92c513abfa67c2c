"""Score the paper authors' own per-utterance results (their wav2vec2-ee repository's
`wer_results/<run>/epoch_<n>/`) as if they were an experiment of ours:

  python -m ee_asr.bin.score_wav2vec2_ee wav2vec2-ee/wer_results/fixed_ee_finetuning/epoch_40 \\
      --exp-dir exp/paper_wav2vec2_ee

Writes `<exp-dir>/decode_<set>/exits.jsonl` (greedy) and `decode_<set>_lm/` (their LM beam), then
scores them as stage 6 does (`<exp-dir>/RESULTS.md`, results.json): per exit the WER with
paired-bootstrap intervals, whether entropy and the N-best posterior beat the fixed exits at
equal mean exit, the oracle, the N-best posterior against entropy, and a plot per set.
Compute is counted in encoder layers (their files hold no times). The default --sets are the
LibriSpeech test-clean and test-other line ranges of their files.
"""

import argparse
import json
import logging
from pathlib import Path

from ee_asr.common.atomic import atomic_write_text, make_output_dir
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.score.report import write_results
from ee_asr.score.wav2vec2_ee_files import DECODERS, parse_sets, read_records

SUFFIX = {"greedy": "", "lm_beam": "_lm"}  # the decode dir names of stage 5 (decode_<set>, decode_<set>_lm)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores_dir", help="a wav2vec2-ee results dir (entropy_wer_*_L.txt, posterior_wer_*_L.txt)")
    p.add_argument("--exp-dir", required=True, help="where the decode dirs and RESULTS.md go")
    p.add_argument("--sets", nargs="+", default=["test_clean=1-2620", "test_other=2621-5559"],
                   help="NAME=FIRST-LAST line ranges (1-based) of the test sets in the files")
    p.add_argument("--vocab-size", type=int, default=32,
                   help="their output vocabulary (wav2vec2's 32 characters), to put entropy on our scale")
    p.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap draws of the test utterances")
    args = p.parse_args(argv)
    setup_logging()
    sets, exp = parse_sets(args.sets), Path(args.exp_dir)
    for decoder in DECODERS:
        for name, records in read_records(args.scores_dir, decoder, sets, args.vocab_size).items():
            d = exp / f"decode_{name}{SUFFIX[decoder]}"
            make_output_dir(d)
            atomic_write_text(d / "exits.jsonl", "".join(json.dumps(r) + "\n" for r in records))
            logging.info("%s: %d records", d, len(records))
    preface = (f"Per-utterance results of {Path(args.scores_dir).resolve()}: `decode_<set>` greedy, "
               "`decode_<set>_lm` their lexicon + 4-gram LM beam; compute counted in encoder layers.\n\n")
    print(write_results(exp, args.bootstrap, "ee_asr.bin.score_wav2vec2_ee", preface))


if __name__ == "__main__":
    run_main(main)
