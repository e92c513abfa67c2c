"""Check a Kaldi data dir; errors name the file and line. `--fix` sorts it and rebuilds spk2utt first."""

import argparse

from ee_asr.common.cli import run_main
from ee_asr.data.datadir import fix_data_dir, validate_data_dir


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data_dir")
    p.add_argument("--fix", action="store_true", help="sort files in C order and rebuild spk2utt first")
    p.add_argument("--no-audio", action="store_true", help="skip opening the audio files")
    args = p.parse_args(argv)
    if args.fix:
        fix_data_dir(args.data_dir)
    n = validate_data_dir(args.data_dir, check_audio=not args.no_audio)
    print(f"{args.data_dir}: {n} utterances, valid")


if __name__ == "__main__":
    run_main(main)
