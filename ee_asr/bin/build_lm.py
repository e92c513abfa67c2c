"""Build a word n-gram ARPA language model (interpolated Kneser-Ney) from transcripts:

  python -m ee_asr.bin.build_lm --text data/train/text --order 3 --output data/lm/lm.arpa

`--text` is a Kaldi text file (`<utt> <transcript>`), or with `--text-format plain` one
sentence per line (any corpus a user brings). Decode with it: `bin.decode --lm data/lm/lm.arpa`.
"""

import argparse
import logging
import time

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import DataError
from ee_asr.common.lines import read_lines
from ee_asr.data.datadir import read_table
from ee_asr.data.ngram_lm import build_arpa


def read_sentences(path, text_format):
    if text_format == "kaldi":
        sentences = [transcript.split() for _, transcript, _ in read_table(path, allow_empty_value=True)]
    else:
        sentences = [line.split() for _, line in read_lines(path) if line.strip()]
    if not any(sentences):
        raise DataError(path, "holds no words to build a language model from")
    return sentences


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, help="training text: Kaldi text file, or plain (--text-format)")
    p.add_argument("--text-format", default="kaldi", choices=["kaldi", "plain"])
    p.add_argument("--order", type=int, default=3, help="n-gram order")
    p.add_argument("--output", required=True, help="ARPA file to write")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging()
    start = time.time()
    sentences = read_sentences(args.text, args.text_format)
    counts = build_arpa(sentences, args.order, args.output)
    logging.info("%s: %d-gram LM from %d sentences (%d words), n-grams per order %s, in %.1fs", args.output,
                 args.order, len(sentences), sum(map(len, sentences)), counts, time.time() - start)


if __name__ == "__main__":
    run_main(main)
