"""A LibriSpeech replica: the mini corpus's voices in openslr 12's archives and layout.

Each subset is its publisher's archive (`train-clean-100.tar.gz`, ...) holding
`LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac`, a
`<speaker>-<chapter>.trans.txt` per chapter (upper case) and, as every real archive does, the
corpus's SPEAKERS.TXT and CHAPTERS.TXT. Every subset the preparer knows is there: three
training subsets, dev-clean/-other and test-clean/-other (voices training never hears; "other"
with more noise). Most utterances are one or two sentences; one per subset runs to 30-35 s,
LibriSpeech's longest. The archives do not match the publisher's checksums, which are checked
only on download: point a recipe at the replica with `--download false`.
"""

import logging
import random
import shutil
from pathlib import Path

import numpy as np
import soundfile

from ee_asr.corpora.librispeech import ARCHIVES
from ee_asr.corpora.mini_tts import SAMPLE_RATE
from ee_asr.corpora.replica import ClipBank, pack, sentence_lists, silence, voices

# per subset: speakers, chapters per speaker, utterances per chapter
SIZES = {
    "tiny": {"train-clean-100": (4, 2, 6), "train-clean-360": (2, 1, 8), "train-other-500": (2, 1, 8),
             "dev-clean": (2, 1, 4), "dev-other": (2, 1, 4), "test-clean": (2, 1, 4), "test-other": (2, 1, 4)},
    "small": {"train-clean-100": (12, 2, 20), "train-clean-360": (8, 2, 20), "train-other-500": (8, 2, 20),
              "dev-clean": (4, 1, 15), "dev-other": (4, 1, 15), "test-clean": (4, 1, 15), "test-other": (4, 1, 15)},
}
LONGEST = 35.0  # seconds; LibriSpeech's utterances are at most ~35 s
LONG = 30.0     # the long utterance of each subset is at least this long


def is_eval(subset):
    return subset.startswith(("dev", "test"))


def plan(size, seed):
    """[(subset, speaker id, voice, chapter id, [[sentence, ...] per utterance])]: utterance 0 of a
    subset's first chapter is the long one, its sentences chosen when the clip lengths are known."""
    sizes = SIZES[size]
    n_train = sum(s for sub, (s, _, _) in sizes.items() if not is_eval(sub))
    n_eval = sum(s for sub, (s, _, _) in sizes.items() if is_eval(sub))
    train_voices, eval_voices = voices(n_train, n_eval, seed)
    n_eval_sents = sum(s * c * u for sub, (s, c, u) in sizes.items() if is_eval(sub))
    train_sents, eval_sents = sentence_lists(n_eval_sents, seed)
    rng = random.Random(seed)
    chapters, k = [], 0
    for subset, (n_spk, n_chap, n_utt) in sizes.items():
        pool, sents = (eval_voices, eval_sents) if is_eval(subset) else (train_voices, train_sents)
        for _ in range(n_spk):
            voice = pool.pop(0)
            for c in range(n_chap):
                utts = [[sents[rng.randrange(len(sents))] for _ in range(1 if rng.random() < 0.7 else 2)]
                        for _ in range(n_utt)]
                chapters.append((subset, 100 + k, voice, 1000 * (k + 1) + c, utts))
            k += 1
    return chapters


def speaker_sex(voice):
    name = voice.voice.split("+")[-1]
    return "F" if name.startswith("f") or name == "slt" else "M"


def long_utterance(keys, bank):
    """Clips of `keys` in turn, skipping any that would pass LONGEST, until LONG is reached (the
    pauses between them, 0.15-0.4 s, counted at their least for LONG and their most for LONGEST)."""
    chosen, clip_seconds, misses, j = [], 0.0, 0, 0
    while clip_seconds + 0.15 * len(chosen) + 0.2 < LONG and misses < len(keys):
        key, j = keys[j % len(keys)], j + 1
        seconds = len(bank[key]) / SAMPLE_RATE
        if clip_seconds + seconds + 0.4 * (len(chosen) + 1) + 0.2 > LONGEST:
            misses += 1
            continue
        chosen.append(key)
        clip_seconds, misses = clip_seconds + seconds, 0
    return chosen


def write_tree(root, chapters, bank, rng):
    """Write LibriSpeech/ under `root`; return {speaker: seconds} and {chapter: seconds}."""
    spk_secs, chap_secs, long_done = {}, {}, set()
    for subset, spk, voice, chapter, utts in chapters:
        d = root / "LibriSpeech" / subset / str(spk) / str(chapter)
        d.mkdir(parents=True)
        lines = []
        for i, sentences in enumerate(utts):
            clips = [bank[bank.want(voice, s)] for s in sentences]
            if subset not in long_done:  # the subset's long utterance: the chapter's sentences in turn
                long_done.add(subset)
                keys = long_utterance([bank.want(voice, s) for u in utts for s in u], bank)
                sentences, clips = [k[1] for k in keys], [bank[k] for k in keys]
            gaps = [silence(rng.uniform(0.15, 0.4), rng) for _ in clips]
            wave = np.concatenate([x for pair in zip(gaps, clips) for x in pair] + [silence(0.2, rng)])
            if subset.endswith("other"):  # the harder half: noise at 5-12 dB SNR
                noise = rng.standard_normal(len(wave)).astype(np.float32)
                snr = rng.uniform(5, 12)
                wave = wave + noise * np.sqrt(np.mean(wave ** 2) / 10 ** (snr / 10))
            wave = np.clip(wave, -1, 1)
            utt = f"{spk}-{chapter}-{i:04d}"
            soundfile.write(d / f"{utt}.flac", wave, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            lines.append(f"{utt} {' '.join(sentences).upper()}")
            seconds = len(wave) / SAMPLE_RATE
            spk_secs[spk] = spk_secs.get(spk, 0.0) + seconds
            chap_secs[chapter] = chap_secs.get(chapter, 0.0) + seconds
        (d / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return spk_secs, chap_secs


def write_metadata(top, chapters, spk_secs, chap_secs):
    """SPEAKERS.TXT, CHAPTERS.TXT and README.TXT in LibriSpeech's own column layout."""
    speakers = {spk: (subset, voice) for subset, spk, voice, _, _ in chapters}
    rows = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    rows += [f"{spk:<5}| {speaker_sex(voice)} | {subset:<17}| {spk_secs[spk] / 60:5.2f} | {voice.id}"
             for spk, (subset, voice) in speakers.items()]
    (top / "SPEAKERS.TXT").write_text("\n".join(rows) + "\n")
    rows = [";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE"]
    rows += [f"{chapter:<7}| {spk:<5}| {chap_secs[chapter] / 60:5.2f} | {subset:<17}| 0    | 0     | "
             f"Chapter {chapter} | mini corpus replica" for subset, spk, _, chapter, _ in chapters]
    (top / "CHAPTERS.TXT").write_text("\n".join(rows) + "\n")
    (top / "README.TXT").write_text("A synthetic replica of LibriSpeech's layout (ee_asr.bin.make_replica), "
                                    "not LibriSpeech: espeak-ng voices saying the mini corpus's sentences.\n")


def make(output, size="tiny", seed=1, nj=2):
    """Write the seven subset archives into `output`; return {subset: utterances}."""
    output = Path(output)
    chapters = plan(size, seed)
    bank = ClipBank.of(output / ".clips", nj, ((voice, s) for _, _, voice, _, utts in chapters
                                               for sentences in utts for s in sentences))
    staging = output / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    # a tree extracted from an earlier replica would be taken as this one's (the marker holds the
    # publisher's checksum, not the archive's), so it goes
    shutil.rmtree(output / "LibriSpeech", ignore_errors=True)
    for subset in SIZES[size]:
        (output / f".{ARCHIVES[subset].name}.extracted").unlink(missing_ok=True)
    spk_secs, chap_secs = write_tree(staging, chapters, bank, np.random.default_rng(seed))
    write_metadata(staging / "LibriSpeech", chapters, spk_secs, chap_secs)
    counts = {}
    for subset in SIZES[size]:
        pack(output / ARCHIVES[subset].name, staging,
             [Path("LibriSpeech") / n for n in ("README.TXT", "SPEAKERS.TXT", "CHAPTERS.TXT", subset)])
        counts[subset] = sum(len(u) for s, _, _, _, u in chapters if s == subset)
        logging.info("%s: %d utterances", output / ARCHIVES[subset].name, counts[subset])
    shutil.rmtree(staging)
    return counts
