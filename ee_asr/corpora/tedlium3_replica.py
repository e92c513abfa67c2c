"""A TED-LIUM 3 replica: the mini corpus's voices as talks in openslr 51's archive and layout.

`TEDLIUM_release-3.tgz` holds `TEDLIUM_release-3/legacy/{train,dev,test}/{sph,stm}/<talk>.*`:
one 16 kHz SPHERE file per talk (one voice saying several sentences, with pauses), cut by the
STM's timed segments. As in the release, text is lower case with contractions split
("it 's"), a word of some segments is `<unk>`, and pauses of a second or more are
`inter_segment_gap` lines marked `ignore_time_segment_in_scoring`. Dev and test talks are given
by voices training never hears. The archive does not match the publisher's checksum, which is
checked only on download: point a recipe at the replica with `--download false`.
"""

import logging
import random
import re
import shutil
from pathlib import Path

import numpy as np
import soundfile

from ee_asr.corpora.mini_tts import SAMPLE_RATE
from ee_asr.corpora.replica import ClipBank, pack, sentence_lists, silence, voices
from ee_asr.corpora.tedlium3 import ARCHIVE, ROOT

# per split: talks, segments per talk
SIZES = {"tiny": {"train": (6, 10), "dev": (2, 4), "test": (2, 5)},
         "small": {"train": (24, 30), "dev": (4, 10), "test": (4, 12)}}


def release_text(sentence, rng):
    """The release's spelling: contractions split off, and sometimes a word unknown to it."""
    words = re.sub(r"(\w)'(\w)", r"\1 '\2", sentence).split()
    # a word whose contraction follows stays, so that no "'s" is left hanging once <unk> is dropped
    whole = [i for i, w in enumerate(words) if w.isalpha() and not "".join(words[i + 1:i + 2]).startswith("'")]
    if whole and rng.random() < 0.2:
        words[rng.choice(whole)] = "<unk>"
    return " ".join(words)


def plan(size, seed):
    """[(split, talk, voice, [[sentence, ...] per segment])]."""
    sizes = SIZES[size]
    train_voices, eval_voices = voices(sizes["train"][0], sizes["dev"][0] + sizes["test"][0], seed)
    n_eval_sents = sum(t * s for split, (t, s) in sizes.items() if split != "train")
    train_sents, eval_sents = sentence_lists(n_eval_sents, seed)
    rng = random.Random(seed)
    talks, k = [], 0
    for split, (n_talks, n_segs) in sizes.items():
        pool, sents = (train_voices, train_sents) if split == "train" else (eval_voices, eval_sents)
        for _ in range(n_talks):
            segs = [[sents[rng.randrange(len(sents))] for _ in range(rng.choice((1, 1, 2, 3)))]
                    for _ in range(n_segs)]
            talks.append((split, f"Speaker{k:02d}_{2008 + k % 10}", pool.pop(0), segs))
            k += 1
    return talks


def write_talk(base, talk, voice, segs, bank, rng, text_rng):
    """One talk's sph and stm under `base` (a legacy split dir)."""
    pieces, lines, t = [silence(0.5, rng)], [], 0.5
    sex = "female" if voice.voice.split("+")[-1].startswith("f") else "male"
    for sentences in segs:
        clips = [bank[bank.want(voice, s)] for s in sentences]
        joined = np.concatenate([x for c in clips for x in (c, silence(0.2, rng))][:-1])
        start, end = t, t + len(joined) / SAMPLE_RATE
        text = " ".join(release_text(s, text_rng) for s in sentences)
        lines.append(f"{talk} 1 {talk} {start:.2f} {end:.2f} <o,f0,{sex}> {text}")
        gap = rng.uniform(0.3, 1.6)
        if gap >= 1.0:
            lines.append(f"{talk} 1 inter_segment_gap {end:.2f} {end + gap:.2f} <o,,unknown> "
                         f"ignore_time_segment_in_scoring")
        pieces += [joined, silence(gap, rng)]
        t = end + gap
    wave = np.clip(np.concatenate(pieces), -1, 1)
    soundfile.write(base / "sph" / f"{talk}.sph", wave, SAMPLE_RATE, format="NIST", subtype="PCM_16")
    (base / "stm" / f"{talk}.stm").write_text("\n".join(lines) + "\n")
    return len(wave) / SAMPLE_RATE


def make(output, size="tiny", seed=1, nj=2):
    """Write TEDLIUM_release-3.tgz into `output`; return {split: segments}."""
    output = Path(output)
    talks = plan(size, seed)
    bank = ClipBank.of(output / ".clips", nj, ((voice, s) for _, _, voice, segs in talks
                                               for sentences in segs for s in sentences))
    staging = output / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    # a tree extracted from an earlier replica would be taken as this one's (the marker holds the
    # publisher's checksum, not the archive's), so it goes
    shutil.rmtree(output / ROOT, ignore_errors=True)
    (output / f".{ARCHIVE.name}.extracted").unlink(missing_ok=True)
    rng, text_rng = np.random.default_rng(seed), random.Random(seed)
    for split, talk, voice, segs in talks:
        base = staging / ROOT / "legacy" / split
        (base / "sph").mkdir(parents=True, exist_ok=True)
        (base / "stm").mkdir(parents=True, exist_ok=True)
        seconds = write_talk(base, talk, voice, segs, bank, rng, text_rng)
        logging.info("%s/%s: %d segments, %.1f s", split, talk, len(segs), seconds)
    (staging / ROOT / "readme.txt").write_text(
        "A synthetic replica of TED-LIUM 3's layout (ee_asr.bin.make_replica), not TED-LIUM: "
        "espeak-ng voices saying the mini corpus's sentences.\n")
    pack(output / ARCHIVE.name, staging, [Path(ROOT) / "readme.txt", Path(ROOT) / "legacy"])
    shutil.rmtree(staging)
    return {split: sum(len(s) for sp, _, _, s in talks if sp == split) for split in SIZES[size]}
