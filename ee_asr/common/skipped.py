"""A decode dir's `skipped` file: `<utt> <reason>` per utterance that decoding could not decode
(too short, unreadable). Decoding writes it, scoring reports it beside the tables."""

from ee_asr.common.atomic import atomic_open

SKIPPED_FILE = "skipped"


def write_skipped(path, skipped):
    with atomic_open(path) as f:
        for utt in sorted(skipped):
            f.write(f"{utt} {skipped[utt]}\n")


def read_skipped(path):
    """Utterance ids of a decode dir's `skipped` file; none when it has no such file."""
    try:
        return [line.split(maxsplit=1)[0] for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []
