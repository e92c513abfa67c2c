"""Shared start-up for the thin `python -m ee_asr.bin.<tool>` entry points."""

import argparse
import logging
import sys

from ee_asr.common.errors import UserError

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(level="INFO", log_file=None):
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)


def run_main(main, argv=None):
    """Run `main(argv)`; a UserError becomes one clear line on stderr and exit code 2."""
    try:
        return main(argv)
    except UserError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        sys.exit(2)


class _Renamed(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} was renamed {self.const}: use {self.const}")


def add_renamed_options(parser, renames):
    """Old option spellings fail with a message naming the new one ({old: new}); registering them
    also stops argparse from taking them as abbreviations of the new names."""
    for old, new in renames.items():
        parser.add_argument(old, action=_Renamed, const=new, nargs="?", default=argparse.SUPPRESS,
                            help=argparse.SUPPRESS)
