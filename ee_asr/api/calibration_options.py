"""Options of the calibration tools (calibrate_exits, check_calibration): which recorded scores
they read."""

from ee_asr.score.calibration_check import PAPER_SETS, read_tables
from ee_asr.score.wav2vec2_ee_files import DECODERS, parse_sets


def add_input_options(p):
    """The scores a calibration reads: an exits.jsonl, or the paper authors' results dir."""
    p.add_argument("--sets", nargs="+", default=None,
                   help="for a wav2vec2-ee results dir: NAME=FIRST-LAST line ranges (default: test_clean, test_other)")
    p.add_argument("--decoder", choices=DECODERS, default="greedy", help="for a wav2vec2-ee results dir")
    p.add_argument("--classifier", default=None, help="exit_classifier.json, for the learned policy's p_as_good")


def read_inputs(args, path):
    sets = parse_sets(args.sets) if args.sets else PAPER_SETS
    return read_tables(path, sets, args.decoder, classifier=args.classifier)
