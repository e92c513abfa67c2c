"""Shared start-up for the thin `python -m ee_asr.bin.<tool>` entry points."""

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
