"""LibriSpeech (openslr 12): FLAC audio and `<spk>-<chapter>.trans.txt` transcripts into data dirs.

data/train is train-clean-100 (`--train 100`) or all 960 hours; data/dev is dev-clean and
dev-other together (checkpoint selection); data/test_clean and data/test_other are scored, and
data/dev_clean and data/dev_other are there to score too (`--test-sets`), as ESPnet reports them.
"""

import logging
from pathlib import Path

from ee_asr.common.errors import DataError, UserError
from ee_asr.common.lines import read_lines
from ee_asr.corpora.download import Archive, fetch
from ee_asr.data.datadir import fix_data_dir, write_table

BASE = "https://www.openslr.org/resources/12"
# md5 sums from openslr's md5sum.txt
ARCHIVES = {
    "train-clean-100": Archive(f"{BASE}/train-clean-100.tar.gz", "md5:2a93770f6d5c6c964bc36631d331a522"),
    "train-clean-360": Archive(f"{BASE}/train-clean-360.tar.gz", "md5:c0e676e450a7ff2f54aeade5171606fa"),
    "train-other-500": Archive(f"{BASE}/train-other-500.tar.gz", "md5:d1a0fd59409feb2c614ce4d30c387708"),
    "dev-clean": Archive(f"{BASE}/dev-clean.tar.gz", "md5:42e2234ba48799c1f50f24a7926300a1"),
    "dev-other": Archive(f"{BASE}/dev-other.tar.gz", "md5:c8d0bcc9cca99d4f8b62fcc847357931"),
    "test-clean": Archive(f"{BASE}/test-clean.tar.gz", "md5:32fa31d27d2e1cad72775fee3f4849a9"),
    "test-other": Archive(f"{BASE}/test-other.tar.gz", "md5:fb5a50374b501bb3bac4815ee91d3135"),
}
TRAIN = {"100": ["train-clean-100"], "960": ["train-clean-100", "train-clean-360", "train-other-500"]}


def splits(train="960"):
    if train not in TRAIN:
        raise UserError(f"--train must be one of {', '.join(TRAIN)} (hours), not {train!r}")
    return {"train": TRAIN[train], "dev": ["dev-clean", "dev-other"],
            "dev_clean": ["dev-clean"], "dev_other": ["dev-other"],
            "test_clean": ["test-clean"], "test_other": ["test-other"]}


def read_subset(subset_dir):
    """Yield (utt, speaker, flac path, text) for every transcript line of one subset dir."""
    subset_dir = Path(subset_dir)
    trans_files = sorted(subset_dir.glob("*/*/*.trans.txt"))
    if not trans_files:
        raise UserError(f"{subset_dir} holds no */*/*.trans.txt: not a LibriSpeech subset")
    for trans in trans_files:
        for n, line in read_lines(trans):
            utt, _, text = line.strip().partition(" ")
            if not utt:
                continue
            if not text.strip():
                raise DataError(trans, f"utterance '{utt}' has an empty transcript", n)
            flac = trans.parent / f"{utt}.flac"
            if not flac.is_file():
                raise DataError(trans, f"utterance '{utt}': {flac} is missing", n)
            yield utt, utt.split("-")[0], flac.resolve(), " ".join(text.split())


def prepare(datadir, out_data, train="960", download=True, mirror=None):
    """Download what `train` needs into `datadir`, then write the data dirs of `splits(train)`."""
    datadir = Path(datadir)
    for name, subsets in splits(train).items():
        rows = []
        for subset in subsets:
            fetch(ARCHIVES[subset], datadir, download, mirror)
            rows.extend(read_subset(datadir / "LibriSpeech" / subset))
        d = Path(out_data) / name
        write_table(d / "wav.scp", [(u, str(p)) for u, _, p, _ in rows])
        write_table(d / "text", [(u, t) for u, _, _, t in rows])
        write_table(d / "utt2spk", [(u, s) for u, s, _, _ in rows])
        fix_data_dir(d)
        logging.info("%s: %d utterances from %s", d, len(rows), ", ".join(subsets))
