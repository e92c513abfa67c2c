"""TED-LIUM 3 (openslr 51): one SPHERE file per talk and an STM file of timed segments, into
data dirs with `segments` (the legacy train/dev/test split, as in Kaldi's and ESPnet's recipes).

Transcripts are lower case; tokenised contractions are joined back ("it 's" -> "it's"), and
`<unk>` marks are dropped from training and reference text alike. Segments labelled
`ignore_time_segment_in_scoring` are skipped.
"""

import logging
import re
from pathlib import Path

from ee_asr.common.errors import DataError, UserError
from ee_asr.common.lines import read_lines
from ee_asr.corpora.download import Archive, fetch
from ee_asr.data.datadir import fix_data_dir, write_table

ARCHIVE = Archive("https://www.openslr.org/resources/51/TEDLIUM_release-3.tgz",
                  "sha256:ad1e454d14d1ad550bc2564c462d87c7a7ec83d4dc2b9210f22ab4973b9eccdb")
ROOT = "TEDLIUM_release-3"
SPLITS = {"train": "train", "dev": "dev", "test": "test"}


def normalise(text):
    words = [w for w in text.split() if w != "<unk>"]
    return re.sub(r" '(?=\w)", "'", " ".join(words))


def read_stm(stm):
    """Yield (talk, speaker, start, end, text, line) for every scored segment of one STM file."""
    for n, line in read_lines(stm):
        if not line.strip() or line.startswith(";;"):
            continue
        fields = line.split(maxsplit=6)
        if len(fields) < 6:
            raise DataError(stm, "expected 'talk channel speaker start end <label> text'", n)
        talk, _, speaker, start, end = fields[:5]
        text = fields[6] if len(fields) > 6 else ""
        if "ignore_time_segment_in_scoring" in text:
            continue
        try:
            start, end = float(start), float(end)
        except ValueError:
            raise DataError(stm, f"start/end '{fields[3]} {fields[4]}' are not numbers", n) from None
        if end <= start:
            raise DataError(stm, f"segment ends ({end}) before it starts ({start})", n)
        text = normalise(text)
        if text:
            yield talk, speaker, start, end, text, n


def prepare_split(split_dir, out_dir):
    split_dir = Path(split_dir)
    stms = sorted((split_dir / "stm").glob("*.stm"))
    if not stms:
        raise UserError(f"{split_dir}/stm holds no .stm files: not a TED-LIUM 3 split")
    wav, segments, text, utt2spk = [], [], [], []
    for stm in stms:
        sph = split_dir / "sph" / f"{stm.stem}.sph"
        if not sph.is_file():
            raise DataError(stm, f"its audio {sph} is missing")
        wav.append((stm.stem, str(sph.resolve())))
        for talk, _, start, end, words, _ in read_stm(stm):
            utt = f"{talk}-{round(start * 100):07d}-{round(end * 100):07d}"
            segments.append((utt, f"{talk} {start:.2f} {end:.2f}"))
            text.append((utt, words))
            utt2spk.append((utt, talk))  # one speaker per talk, as in Kaldi's recipe
    out_dir = Path(out_dir)
    write_table(out_dir / "wav.scp", wav)
    write_table(out_dir / "segments", segments)
    write_table(out_dir / "text", text)
    write_table(out_dir / "utt2spk", utt2spk)
    fix_data_dir(out_dir)
    return len(text)


def prepare(datadir, out_data, download=True, mirror=None):
    datadir = Path(datadir)
    fetch(ARCHIVE, datadir, download, mirror)
    for name, split in SPLITS.items():
        n = prepare_split(datadir / ROOT / "legacy" / split, Path(out_data) / name)
        logging.info("%s: %d segments", Path(out_data) / name, n)
