"""What the corpus replicas share: the mini corpus's synthetic voices saying its sentences, and
archives packed the way their publisher packs them.

A replica is the mini corpus written in a real corpus's own layout (`librispeech_replica.py`,
`tedlium3_replica.py`), so that a real recipe, pointed at it as its download directory with
`--download false`, runs every stage on data shaped like the real corpus in minutes on a CPU.
Clips are synthesised once into `<output>/.clips` (a rerun reuses them); the same seed gives
the same replica.
"""

import logging
import random
import subprocess
import tarfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile

from ee_asr.common.atomic import atomic_path
from ee_asr.common.errors import UserError
from ee_asr.corpora.mini_tts import SAMPLE_RATE, Utterance, synthesize, wav_name
from ee_asr.corpora.sentences import narrow_domain, read_pool, read_raw, top_words
from ee_asr.corpora.voices import train_and_test_speakers


def _synthesize(job):
    utt, path = job
    try:
        synthesize(utt, path)
    except (subprocess.CalledProcessError, OSError) as e:
        return f"{utt.speaker.id} saying '{utt.text}': {e} {getattr(e, 'stderr', '') or ''}".strip()
    return None


def sentence_lists(n_eval, seed, vocab_size=1000):
    """(training sentences, evaluation sentences): disjoint, shuffled by `seed`, the mini corpus's
    narrow domain (every word among the `vocab_size` most frequent), so a tiny model can learn."""
    pool = read_pool(read_raw())
    sentences = narrow_domain(pool, top_words(pool, vocab_size))
    random.Random(seed).shuffle(sentences)
    if len(sentences) <= 2 * n_eval:
        raise UserError(f"only {len(sentences)} sentences for {n_eval} evaluation sentences")
    return sentences[n_eval:], sentences[:n_eval]


def voices(n_train, n_eval, seed):
    """Training voices and evaluation voices (variants no training voice uses), `n` of each."""
    train, test = train_and_test_speakers(n_train, n_eval, seed)
    if len(train) < n_train or len(test) < n_eval:
        raise UserError(f"espeak-ng offers {len(train)} training and {len(test)} evaluation voices, "
                        f"fewer than the {n_train} and {n_eval} asked for")
    return train[:n_train], test[:n_eval]


class ClipBank:
    """Synthesised sentences, asked for first (`want`) and made together in `nj` processes (`make`)."""

    def __init__(self, cache_dir, nj=2):
        self.cache_dir, self.nj = Path(cache_dir), nj
        self.wanted = {}

    @classmethod
    def of(cls, cache_dir, nj, wanted):
        """A bank holding every (speaker, text) of `wanted`, made."""
        bank = cls(cache_dir, nj)
        for speaker, text in wanted:
            bank.want(speaker, text)
        bank.make()
        return bank

    def want(self, speaker, text):
        """Return the key of `speaker` saying `text`; its audio is `self[key]` after `make()`."""
        key = (speaker, text)
        if key not in self.wanted:
            utt = Utterance(speaker.id, speaker, text, zlib.crc32(f"{speaker.id}|{text}".encode()))
            self.wanted[key] = (utt, self.cache_dir / wav_name(utt))
        return key

    def make(self):
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        jobs = [j for j in self.wanted.values() if not j[1].exists()]
        start, errors = time.time(), []
        logging.info("synthesising %d clips (%d already in %s)", len(jobs), len(self.wanted) - len(jobs),
                     self.cache_dir)
        with ProcessPoolExecutor(self.nj) as pool:
            for i, err in enumerate(pool.map(_synthesize, jobs, chunksize=4), start=1):
                if err:
                    errors.append(err)
                if i % 100 == 0 or i == len(jobs):
                    logging.info("synthesised %d/%d clips in %.0fs", i, len(jobs), time.time() - start)
        if errors:
            raise UserError(f"{len(errors)} clips could not be synthesised, first: {errors[0]}")

    def __getitem__(self, key):
        wave, _ = soundfile.read(self.wanted[key][1], dtype="float32")
        return wave


def silence(seconds, rng):
    """Low room noise rather than digital zeros, as a recording between words has."""
    return (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 1e-3).astype(np.float32)


def pack(archive, root, members):
    """Write the gzipped tar `archive` of `members` (paths relative to `root`), atomically."""
    with atomic_path(archive) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for member in members:
            tar.add(Path(root) / member, arcname=str(member))
