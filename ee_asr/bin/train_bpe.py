"""Train a sentencepiece model on the transcripts of a Kaldi `text` file."""

import argparse
import tempfile

from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.errors import DataError
from ee_asr.data.datadir import read_table
from ee_asr.data.tokenizer import Tokenizer, train_sentencepiece


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--text", required=True, help="Kaldi text file (<utt> <transcript>)")
    p.add_argument("--model-prefix", required=True, help="writes <prefix>.model and .vocab")
    p.add_argument("--vocab-size", type=int, default=300)
    p.add_argument("--model-type", default="unigram", choices=["unigram", "bpe", "char", "word"])
    args = p.parse_args(argv)
    setup_logging()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as f:
        rows = read_table(args.text)
        if not rows:
            raise DataError(args.text, "holds no transcripts")
        for _, transcript, _ in rows:
            f.write(transcript + "\n")
        f.flush()
        train_sentencepiece(f.name, args.model_prefix, args.vocab_size, args.model_type, source=args.text)
    tok = Tokenizer(f"{args.model_prefix}.model")
    print(f"{args.model_prefix}.model: {tok.vocab_size} model tokens (with <blank> and <sos/eos>)")


if __name__ == "__main__":
    run_main(main)
