"""The mini corpus: multi-speaker synthetic English speech with held-out test voices and sentences.

Splits:
- train: training sentences (and, as an option, in-vocabulary runs of words inside other
         sentences) spoken by training speakers;
- dev:   held-out sentences, training speakers (checkpoint selection);
- test:  held-out sentences, held-out speakers (voice variants no training speaker uses);
- dev_unseen (optional): dev's sentences spoken by voices neither training nor test uses, so a
         model behaves there as on test's new voices, which dev's training voices cannot show
         (the `learned` exit policy's classifier is fitted on it).
Every utterance is augmented at random: speed 0.9-1.1, reverberation, noise at 5-25 dB SNR.
The same seed gives the same corpus; audio already written is kept, so a rerun resumes.
"""

import logging
import os
import random
import subprocess
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from ee_asr.common.atomic import make_output_dir
from ee_asr.corpora.sentences import fragments, narrow_domain, overlaps, read_pool, read_raw, top_words
from ee_asr.corpora.voices import Speaker, train_and_test_speakers, unseen_dev_speakers
from ee_asr.data.datadir import fix_data_dir, write_table

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    speaker: Speaker
    text: str
    seed: int


def plan_corpus(sentences, train_speakers, test_speakers, n_train, n_dev, n_test, n_heldout_sents, seed,
                extra_train=(), unseen_speakers=(), n_dev_unseen=0):
    """Utterances per split. Held-out dev and test sentences come from `sentences`; training also
    draws from `extra_train` (texts that neither contain nor sit inside a held-out sentence);
    `n_dev_unseen` > 0 adds dev_unseen (dev's sentences, `unseen_speakers`). Each split draws
    from its own generator, so training options leave dev and test as they are."""
    rng = random.Random(seed)
    sentences = list(sentences)
    rng.shuffle(sentences)
    if len(sentences) <= 2 * n_heldout_sents:
        raise ValueError(f"only {len(sentences)} sentences for {n_heldout_sents} held-out dev and test sentences")
    dev_sents = sentences[:n_heldout_sents]
    test_sents = sentences[n_heldout_sents:2 * n_heldout_sents]
    held_out = dev_sents + test_sents
    train_sents = sorted(set(sentences[2 * n_heldout_sents:])
                         | {t for t in extra_train if not overlaps(t, held_out)})
    random.Random(f"train-{seed}").shuffle(train_sents)
    plan = {}
    for name, n, sents, speakers in (("train", n_train, train_sents, train_speakers),
                                     ("dev", n_dev, dev_sents, train_speakers),
                                     ("test", n_test, test_sents, test_speakers),
                                     ("dev_unseen", n_dev_unseen, dev_sents, unseen_speakers)):
        if name == "dev_unseen" and n == 0:
            continue
        split_rng = random.Random(f"{name}-{seed}")
        utts = []
        for i in range(n):
            spk = speakers[i % len(speakers)]
            text = sents[split_rng.randrange(len(sents))] if n > len(sents) else sents[i % len(sents)]
            utts.append(Utterance(f"{spk.id}-{name}{i:05d}", spk, text, zlib.crc32(f"{seed}-{name}-{i}".encode())))
        plan[name] = utts
    return plan


def wav_name(utt: Utterance):
    """The audio file's name: the id plus a digest of what the audio is made from, so that a rerun
    with other options (sentences, sizes) never takes audio spoken for another text as its own."""
    digest = zlib.crc32(f"{utt.speaker!r}|{utt.text}|{utt.seed}".encode())
    return f"{utt.utt_id}-{digest:08x}.wav"


def augment(wave, rng):
    """Noise at 5-25 dB SNR on half of the utterances; white or brown-ish (low-passed) noise."""
    if rng.random() < 0.5:
        noise = rng.standard_normal(len(wave)).astype(np.float32)
        if rng.random() < 0.5:
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
        snr = rng.uniform(5, 25)
        p_sig = np.mean(wave ** 2) + 1e-10
        noise *= np.sqrt(p_sig / (10 ** (snr / 10)) / (np.mean(noise ** 2) + 1e-10))
        wave = wave + noise
    peak = np.max(np.abs(wave))
    return wave * (0.9 / peak) if peak > 0.99 else wave


def sox_effects(rng):
    effects = []
    if rng.random() < 0.5:
        effects += ["speed", f"{rng.uniform(0.9, 1.1):.3f}"]
    if rng.random() < 0.3:
        effects += ["reverb", str(rng.randrange(10, 60)), "50", str(rng.randrange(20, 100))]
    return effects + ["rate", str(SAMPLE_RATE), "channels", "1"]


def synthesize(utt: Utterance, wav_path: Path):
    if wav_path.exists():
        return
    rng = np.random.default_rng(utt.seed)
    with tempfile.TemporaryDirectory() as tmp:
        raw, conv = os.path.join(tmp, "raw.wav"), os.path.join(tmp, "conv.wav")
        utt.speaker.synthesize(utt.text, raw)
        # -D: no dither, which sox otherwise draws at random when writing 16-bit samples
        subprocess.run(["sox", "-D", raw, "-b", "16", conv, *sox_effects(random.Random(utt.seed))],
                       check=True, capture_output=True)
        wave, _ = soundfile.read(conv, dtype="float32")
        wave = augment(wave, rng)
        tmp_out = wav_path.with_suffix(".tmp.wav")
        soundfile.write(tmp_out, wave, SAMPLE_RATE, subtype="PCM_16")
        os.replace(tmp_out, wav_path)


def _job(args):
    utt, wav_path = args
    try:
        synthesize(utt, wav_path)
        return None
    except (subprocess.CalledProcessError, OSError) as e:
        err = getattr(e, "stderr", b"") or b""
        return f"{utt.utt_id}: {e} {err.decode(errors='replace') if isinstance(err, bytes) else err}".strip()


def write_split(data_dir, utts, wav_dir):
    data_dir = Path(data_dir)
    make_output_dir(data_dir)
    write_table(data_dir / "wav.scp", [(u.utt_id, str((wav_dir / wav_name(u)).resolve())) for u in utts])
    write_table(data_dir / "text", [(u.utt_id, u.text) for u in utts])
    write_table(data_dir / "utt2spk", [(u.utt_id, u.speaker.id) for u in utts])
    fix_data_dir(data_dir)


def make_corpus(out_data, wav_root, n_train, n_dev, n_test, vocab_size=1000, n_heldout_sents=150,
                n_train_espeak=60, n_test_espeak=12, seed=1, nj=2, text_file=None, train_fragments=False,
                n_dev_unseen=0, n_unseen_espeak=12):
    raw = read_raw(text_file)
    pool = read_pool(raw)
    vocab = top_words(pool, vocab_size)
    sentences = narrow_domain(pool, vocab)
    logging.info("%d sentences within the %d most frequent words", len(sentences), vocab_size)
    extra = fragments(raw, vocab) if train_fragments else []
    if extra:
        logging.info("training may also draw from %d in-vocabulary fragments of other sentences", len(extra))
    train_spk, test_spk = train_and_test_speakers(n_train_espeak, n_test_espeak, seed)
    unseen_spk = unseen_dev_speakers(n_unseen_espeak, seed) if n_dev_unseen else []
    plan = plan_corpus(sentences, train_spk, test_spk, n_train, n_dev, n_test, n_heldout_sents, seed, extra,
                       unseen_spk, n_dev_unseen)
    jobs = []
    for name, utts in plan.items():
        wav_dir = Path(wav_root) / name
        make_output_dir(wav_dir)
        jobs += [(u, wav_dir / wav_name(u)) for u in utts]
    start, errors = time.time(), []
    with ProcessPoolExecutor(nj) as pool:
        for i, err in enumerate(pool.map(_job, jobs, chunksize=8), start=1):
            if err:
                errors.append(err)
            if i % 500 == 0 or i == len(jobs):
                rate = i / (time.time() - start)
                logging.info("synthesised %d/%d utterances, %.1f utt/s, eta %.0fs", i, len(jobs), rate,
                             (len(jobs) - i) / rate)
    if errors:
        raise RuntimeError(f"{len(errors)} utterances failed, first: {errors[0]}")
    for name, utts in plan.items():
        write_split(Path(out_data) / name, utts, Path(wav_root) / name)
    return {name: len(u) for name, u in plan.items()}
