"""Stage 2's features of a data dir written as ark/scp with kaldiio: log-mel filterbanks, or the
raw waveform as an (N, 1) matrix for models with their own front end (wav2vec2)."""

import logging
import time
from pathlib import Path

import kaldiio

from ee_asr.common.atomic import atomic_path
from ee_asr.common.errors import UserError
from ee_asr.data.audio import read_audio
from ee_asr.data.datadir import read_table
from ee_asr.data.fbank import SAMPLE_RATE, compute_fbank, make_fbank


def iter_utterances(wav_scp, segments=None):
    """Yield (utt_id, wave) for every utterance of a wav.scp (and optional segments)."""
    recordings = {k: v for k, v, _ in read_table(wav_scp)}
    if segments is None:
        for key, spec in recordings.items():
            yield key, read_audio(spec)
        return
    cached_reco, cached_wave = None, None
    for key, value, _ in read_table(segments):
        reco, start, end = value.split()
        if reco != cached_reco:  # segments are grouped by recording in sorted data dirs
            cached_reco, cached_wave = reco, read_audio(recordings[reco])
        yield key, cached_wave[int(float(start) * SAMPLE_RATE): int(float(end) * SAMPLE_RATE)]


FEATS_TYPES = ("fbank", "raw")


def write_features(wav_scp, out_prefix, segments=None, num_mel_bins=80, feats_type="fbank"):
    """Write `<out_prefix>.ark/.scp` and `<out_prefix>.num_frames` (frames, or samples for raw), each atomically."""
    if feats_type not in FEATS_TYPES:
        raise UserError(f"feats_type must be one of {', '.join(FEATS_TYPES)}, not {feats_type!r}")
    out_prefix = Path(out_prefix)
    opts = make_fbank(num_mel_bins)
    # Appended, not with_suffix: a job prefix such as feats.3 already has a dot.
    ark, scp, lens = (Path(f"{out_prefix}{ext}") for ext in (".ark", ".scp", ".num_frames"))
    count, start = 0, time.time()
    # The scp names the ark by its final path; the ark is renamed before the scp, so an
    # scp on disk always points at a complete ark.
    with atomic_path(scp) as tmp_scp, atomic_path(lens) as tmp_lens:
        with atomic_path(ark) as tmp_ark:
            with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer, open(tmp_lens, "w") as nf:
                for key, wave in iter_utterances(wav_scp, segments):
                    feats = compute_fbank(wave, opts) if feats_type == "fbank" else wave[:, None]
                    if len(feats) == 0:
                        raise UserError(f"{wav_scp}: utterance '{key}' is too short for one frame")
                    writer(key, feats)
                    nf.write(f"{key} {len(feats)}\n")
                    count += 1
                    if count % 500 == 0:
                        rate = count / (time.time() - start)
                        logging.info("%s: %d utterances, %.1f utt/s", out_prefix.name, count, rate)
        text = Path(tmp_scp).read_text().replace(str(tmp_ark), str(ark.resolve()))
        Path(tmp_scp).write_text(text)
    return count
