"""Synthetic speakers: Debian's TTS engines with accents, voice variants, pitch and rate.

A speaker is a fixed engine setting; its id names it, so data dirs stay readable. Test
speakers use voice variants (and a flite voice) that no training speaker uses; the unseen-voice
dev speakers (what the exit classifier learns from) use variants neither of them uses.
"""

import random
import shutil
import subprocess
from dataclasses import dataclass

from ee_asr.common.errors import UserError

ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-029", "en-us-nyc"]
ESPEAK_TRAIN_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "klatt", "klatt3"]
ESPEAK_TEST_VARIANTS = ["m7", "f4", "klatt2"]
# neither training nor test speakers use these: voices unheard in training that are not the test's
ESPEAK_UNSEEN_DEV_VARIANTS = ["m8", "f5", "klatt4"]
FLITE_TRAIN = ["kal16", "rms", "slt"]
FLITE_TEST = ["awb"]
FESTIVAL_TRAIN = ["kal_diphone"]


@dataclass(frozen=True)
class Speaker:
    engine: str
    voice: str
    pitch: int = 50
    rate: int = 170

    @property
    def id(self):
        if self.engine == "espeak":
            return f"es-{self.voice.replace('+', '-')}-p{self.pitch}-s{self.rate}"
        return f"{self.engine[:2]}-{self.voice.replace('_', '-')}"

    def command(self, text, wav):
        if self.engine == "espeak":
            return ["espeak-ng", "-v", self.voice, "-p", str(self.pitch), "-s", str(self.rate), "-w", wav, text]
        if self.engine == "flite":
            return ["flite", "-voice", self.voice, "-t", text, "-o", wav]
        return ["text2wave", "-eval", f"(voice_{self.voice})", "-o", wav]

    def synthesize(self, text, wav):
        stdin = text if self.engine == "festival" else None
        subprocess.run(self.command(text, wav), input=stdin, text=True, check=True, capture_output=True)


def available_engines():
    found = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}
    return {e for e, exe in found.items() if shutil.which(exe)}


def make_speakers(n_espeak, variants, flite, festival, rng):
    engines = available_engines()
    if "espeak" not in engines:
        raise UserError("espeak-ng is not installed: run `make system-deps` (Debian: apt-get install espeak-ng)")
    combos = [(a, v) for a in ESPEAK_ACCENTS for v in variants]
    rng.shuffle(combos)
    speakers = [Speaker("espeak", f"{a}+{v}", rng.randrange(35, 66, 5), rng.randrange(150, 186, 5))
                for a, v in combos[:n_espeak]]
    if "flite" in engines:
        speakers += [Speaker("flite", v) for v in flite]
    if "festival" in engines:
        speakers += [Speaker("festival", v) for v in festival]
    return speakers


def train_and_test_speakers(n_train_espeak, n_test_espeak, seed):
    # a generator each, so that the number of training speakers leaves the test speakers as they are
    train = make_speakers(n_train_espeak, ESPEAK_TRAIN_VARIANTS, FLITE_TRAIN, FESTIVAL_TRAIN, random.Random(seed))
    test = make_speakers(n_test_espeak, ESPEAK_TEST_VARIANTS, FLITE_TEST, [], random.Random(f"test-{seed}"))
    return train, test


def unseen_dev_speakers(n_espeak, seed):
    """Speakers for a dev set of voices that neither training nor test uses (espeak only)."""
    return make_speakers(n_espeak, ESPEAK_UNSEEN_DEV_VARIANTS, [], [], random.Random(f"dev-unseen-{seed}"))
