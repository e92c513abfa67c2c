"""Synthesise the mini corpus into Kaldi data dirs `<data-dir>/{train,dev,test}`; rerun to resume."""

import argparse
import logging

from ee_asr.common.cli import add_renamed_options, run_main, setup_logging
from ee_asr.corpora.mini_tts import make_corpus

SIZES = {  # train, dev, test utterances
    "tiny": (160, 20, 20),
    "small": (1500, 100, 200),
    "demo": (9000, 150, 300),
}
DEV_UNSEEN = {"tiny": 20, "small": 300, "demo": 1800}  # dev_unseen utterances (voices neither train nor test uses)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", required=True, help="output root for the data dirs")
    p.add_argument("--wav-dir", required=True, help="where the audio goes")
    p.add_argument("--size", choices=sorted(SIZES), default="demo")
    p.add_argument("--vocab-size", type=int, default=1000, help="keep sentences within the N most frequent words")
    p.add_argument("--num-train", type=int, default=None, help="training utterances (default: the size's)")
    p.add_argument("--espeak-speakers", type=int, default=60, help="espeak-ng training speakers")
    p.add_argument("--num-dev-unseen", type=int, default=None,
                   help="dev_unseen utterances: dev's sentences in voices neither training nor test uses "
                        "(default: the size's; 0: no such split)")
    p.add_argument("--train-fragments", default="false", choices=["true", "false"],
                   help="true: training texts also from in-vocabulary runs of words inside longer sentences")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nj", type=int, default=2)
    p.add_argument("--text-file", default=None, help="your own sentences, one per line")
    add_renamed_options(p, {"--data": "--data-dir"})
    args = p.parse_args(argv)
    setup_logging()
    n_train, n_dev, n_test = SIZES[args.size]
    n_train = args.num_train or n_train
    heldout = 20 if args.size == "tiny" else 150
    counts = make_corpus(args.data_dir, args.wav_dir, n_train, n_dev, n_test, args.vocab_size, heldout,
                         n_train_espeak=args.espeak_speakers, seed=args.seed, nj=args.nj, text_file=args.text_file,
                         train_fragments=args.train_fragments == "true",
                         n_dev_unseen=DEV_UNSEEN[args.size] if args.num_dev_unseen is None else args.num_dev_unseen)
    logging.info("wrote %s", counts)


if __name__ == "__main__":
    run_main(main)
