"""CMU AN4 (alphanumeric census speech, SPHERE files) into data dirs train/dev/test.

AN4 has no development set: every tenth training speaker (by sorted name, at least one) is
held out as `dev`, so that dev speakers are unseen, as test speakers are.
"""

import logging
import re
from pathlib import Path

from ee_asr.common.errors import DataError, UserError
from ee_asr.common.lines import read_lines
from ee_asr.corpora.download import Archive, fetch
from ee_asr.data.datadir import fix_data_dir, write_table

ARCHIVE = Archive("http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz",
                  "sha256:a0525579493735d32b60fb6fa5975dd0eaacde087b0a4eeb7f13b7ef33077b12")
LINE = re.compile(r"^(?:<s>)?(?P<text>.*?)(?:</s>)?\s*\((?P<file>[^()]+)\)\s*$")


def read_transcription(an4_root, part):
    """Yield (utt, speaker, sph path, text) for `part` in (train, test)."""
    root = Path(an4_root)
    etc, wav_sub = root / "etc", "an4_clstk" if part == "train" else "an4test_clstk"
    trans = etc / f"an4_{part}.transcription"
    if not trans.is_file():
        raise UserError(f"{trans} is missing: not an AN4 tree")
    for n, line in read_lines(trans):
        if not line.strip():
            continue
        m = LINE.match(line.strip())
        if not m:
            raise DataError(trans, "expected '<s> TEXT </s> (file-id)'", n)
        file_id, text = m["file"].strip(), " ".join(m["text"].split())
        if not text:
            raise DataError(trans, f"'{file_id}' has an empty transcript", n)
        speaker = file_id.split("-")[1] if file_id.count("-") >= 2 else file_id
        sph = root / "wav" / wav_sub / speaker / f"{file_id}.sph"
        if not sph.is_file():
            raise DataError(trans, f"'{file_id}': {sph} is missing", n)
        yield f"{speaker}-{file_id}", speaker, sph.resolve(), text


def write_split(out_dir, rows):
    write_table(out_dir / "wav.scp", [(u, str(p)) for u, _, p, _ in rows])
    write_table(out_dir / "text", [(u, t) for u, _, _, t in rows])
    write_table(out_dir / "utt2spk", [(u, s) for u, s, _, _ in rows])
    fix_data_dir(out_dir)


def prepare(datadir, out_data, download=True, mirror=None):
    datadir, out_data = Path(datadir), Path(out_data)
    fetch(ARCHIVE, datadir, download, mirror)
    root = datadir / "an4"
    train = list(read_transcription(root, "train"))
    speakers = sorted({s for _, s, _, _ in train})
    dev_speakers = set(speakers[9::10]) or {speakers[-1]}
    splits = {"train": [r for r in train if r[1] not in dev_speakers],
              "dev": [r for r in train if r[1] in dev_speakers],
              "test": list(read_transcription(root, "test"))}
    for name, rows in splits.items():
        if not rows:
            raise UserError(f"AN4 {name} split is empty ({len(speakers)} training speakers)")
        write_split(out_data / name, rows)
        logging.info("%s: %d utterances", out_data / name, len(rows))
