"""Stage 2's features of a data dir written as ark/scp with kaldiio: log-mel filterbanks, or the
raw waveform as an (N, 1) matrix for models with their own front end (wav2vec2)."""

import logging
import math
import time
from pathlib import Path

import kaldiio

from ee_asr.common.atomic import atomic_path
from ee_asr.common.errors import DataError, UserError
from ee_asr.data.audio import AudioError, read_audio
from ee_asr.data.datadir import read_table
from ee_asr.data.fbank import SAMPLE_RATE, make_fbank


def _read(wav_scp, rows, key):
    """read_audio of wav.scp entry `key`; an AudioError names the wav.scp line it came from."""
    if key not in rows:
        return None
    spec, line = rows[key]
    try:
        return read_audio(spec)
    except AudioError as e:
        raise DataError(wav_scp, f"recording '{key}': {e}", line) from None


def _segment(segments, key, value, line, recordings):
    fields = value.split()
    if len(fields) != 3:
        raise DataError(segments, f"'{key}' needs '<reco> <start> <end>'", line)
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        raise DataError(segments, f"'{key}' has non-numeric times", line) from None
    if not 0 <= start < end < math.inf:  # also refuses nan and inf
        raise DataError(segments, f"'{key}' has start {start} >= end {end}", line)
    if fields[0] not in recordings:
        raise DataError(segments, f"recording '{fields[0]}' is not in the wav.scp", line)
    return fields[0], start, end


def iter_utterances(wav_scp, segments=None):
    """Yield (utt_id, wave) for every utterance of a wav.scp (and optional segments)."""
    recordings = {k: (v, n) for k, v, n in read_table(wav_scp)}
    if segments is None:
        for key in recordings:
            yield key, _read(wav_scp, recordings, key)
        return
    cached_reco, cached_wave = None, None
    for key, value, line in read_table(segments):
        reco, start, end = _segment(segments, key, value, line, recordings)
        if reco != cached_reco:  # segments are grouped by recording in sorted data dirs
            cached_reco, cached_wave = reco, _read(wav_scp, recordings, reco)
        wave = cached_wave[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
        if wave.size == 0:
            raise DataError(segments, f"'{key}' holds no samples: {start}..{end} s is past the end of '{reco}'",
                            line)
        yield key, wave


FEATS_TYPES = ("fbank", "raw")


def waveform_column(wave):
    """The samples as a `raw` dump holds them: a (samples, 1) float32 matrix."""
    return wave[:, None]


def feature_function(feats_type, num_mel_bins=80):
    """What turns an utterance's 16 kHz samples into its features: fbank (frames, bins) or, for
    `raw`, the waveform itself (samples, 1)."""
    if feats_type == "fbank":
        return make_fbank(num_mel_bins)
    if feats_type == "raw":
        return waveform_column
    raise UserError(f"feats_type must be one of {', '.join(FEATS_TYPES)}, not {feats_type!r}")


def iter_features(wav_scp, segments, features):
    """(utterance id, `features` of its samples) of every utterance; one too short for a single
    frame is an error naming it."""
    for key, wave in iter_utterances(wav_scp, segments):
        feats = features(wave)
        if len(feats) == 0:
            raise UserError(f"{wav_scp}: utterance '{key}' is too short for one frame")
        yield key, feats


def write_features(wav_scp, out_prefix, segments=None, num_mel_bins=80, feats_type="fbank"):
    """Write `<out_prefix>.ark/.scp` and `<out_prefix>.num_frames` (frames, or samples for raw), each atomically."""
    features = feature_function(feats_type, num_mel_bins)
    out_prefix = Path(out_prefix)
    # Appended, not with_suffix: a job prefix such as feats.3 already has a dot.
    ark, scp, lens = (Path(f"{out_prefix}{ext}") for ext in (".ark", ".scp", ".num_frames"))
    count, start = 0, time.time()
    # The scp names the ark by its final path; the ark is renamed before the scp, so an
    # scp on disk always points at a complete ark.
    with atomic_path(scp) as tmp_scp, atomic_path(lens) as tmp_lens:
        with atomic_path(ark) as tmp_ark:
            with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer, open(tmp_lens, "w") as nf:
                for key, feats in iter_features(wav_scp, segments, features):
                    writer(key, feats)
                    nf.write(f"{key} {len(feats)}\n")
                    count += 1
                    if count % 500 == 0:
                        rate = count / (time.time() - start)
                        logging.info("%s: %d utterances, %.1f utt/s", out_prefix.name, count, rate)
        text = Path(tmp_scp).read_text().replace(str(tmp_ark), str(ark.resolve()))
        Path(tmp_scp).write_text(text)
    return count
