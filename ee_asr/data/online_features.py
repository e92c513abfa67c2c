"""Features computed as batches are read (stage 2's `--feats-type fbank_online` and
`raw_online`), icefall/lhotse and WeNet style: the dump dir keeps the corpus audio as it is
(wav.scp and segments naming FLAC, SPHERE, wav or pipes), the lengths and the CMVN statistics,
and no features. A dumped fbank costs 112 MB per audio hour, a dumped waveform (`raw`, the
Wav2Vec2 recipes' input) 230 MB, and either one copy per speed factor: LibriSpeech 960 h x 3
speeds would be 320 GB of fbank or 660 GB of waveform.

The features are computed where the batch is collated, in the loader workers (data/loader.py),
by the same code as stage 2's dump: fbank by data/fbank.py (as transcription and the exported
models), the waveform as stage 2's `raw` (samples, 1) matrix. They then equal the dump's and
the deployed front end's, and the workers overlap the work with the training step. (ESPnet
computes fbank on the training device instead, with torchaudio's front end, which is not
Kaldi's numerics and takes device time from the model.)

Speed perturbation happens here too: each training utterance is played at a factor drawn from
the configured list, per (seed, epoch, utterance), so a resumed run draws what an uninterrupted
one did, and a worker needs nothing from the training process's generators. The change of speed
is sox's `speed` (tempo and pitch together) done by polyphase resampling; its samples are close
to, not identical with, sox's of the dumped copies. Batches are planned from the unperturbed
lengths (as WeNet does), so a batch of slowed utterances holds up to 1/0.9 of `batch_bins`.
CMVN statistics are those of the unperturbed audio.
"""

import json
import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile

from ee_asr.common.atomic import atomic_path, atomic_write_text
from ee_asr.common.errors import DataError, UserError
from ee_asr.data.audio import read_audio
from ee_asr.data.datadir import read_table
from ee_asr.data.fbank import SAMPLE_RATE
from ee_asr.data.features import feature_function, iter_features

ONLINE_CONF = "online_features.json"  # its presence makes a dump dir an on-the-fly one
# each kind and the stage-2 dump it stands for, whose features it computes
DUMPED_KIND = {"fbank_online": "fbank", "raw_online": "raw"}
ONLINE_TYPES = tuple(DUMPED_KIND)


def is_online_dump(dump_dir):
    return (Path(dump_dir) / ONLINE_CONF).is_file()


def write_online_conf(dump_dir, feats_type="fbank_online", num_mel_bins=80):
    """What stage 2 leaves in an on-the-fly dump dir once its jobs are done: the kind of
    features, and fbank's size."""
    conf = {"feats_type": feats_type, **({"num_mel_bins": num_mel_bins} if feats_type == "fbank_online" else {})}
    atomic_write_text(Path(dump_dir) / ONLINE_CONF, json.dumps(conf) + "\n")


def read_online_conf(dump_dir):
    path = Path(dump_dir) / ONLINE_CONF
    try:
        conf = json.loads(path.read_text())
    except ValueError:
        raise DataError(path, "is not JSON: rerun stage 2") from None
    kind = conf.get("feats_type") if isinstance(conf, dict) else None
    if kind not in ONLINE_TYPES:
        raise DataError(path, f"feats_type {kind!r} is none of {', '.join(ONLINE_TYPES)}: rerun stage 2")
    if kind == "fbank_online" and not isinstance(conf.get("num_mel_bins"), int):
        raise DataError(path, "fbank_online without a whole num_mel_bins: rerun stage 2")
    return conf


def online_feature_function(feats_type, num_mel_bins=80):
    """What turns an utterance's 16 kHz samples into its features, per kind of on-the-fly dump:
    those of the stage-2 dump it stands for."""
    if feats_type not in DUMPED_KIND:
        raise UserError(f"feats_type must be one of {', '.join(ONLINE_TYPES)}, not {feats_type!r}")
    return feature_function(DUMPED_KIND[feats_type], num_mel_bins)


def speed_factor(factors, seed, epoch, utt):
    """The factor of `utt` in `epoch`: a draw from its own generator, the same in any process
    (random.Random hashes a str seed with sha512, not Python's per-process salted hash)."""
    if not factors:
        return 1.0
    return random.Random(f"{seed}:{epoch}:{utt}").choice(list(factors))


def change_speed(wave, factor):
    """The waveform played `factor` times as fast (sox `speed`): read as if sampled at
    factor x 16 kHz, resampled to 16 kHz; 1.1 gives 1/1.1 as many samples."""
    if factor == 1.0:
        return wave
    from scipy.signal import resample_poly

    ratio = Fraction(factor).limit_denominator(100)
    return resample_poly(wave, ratio.denominator, ratio.numerator).astype(np.float32)


def audio_specs(dump_dir):
    """utt -> (wav.scp entry, start, end): start and end in seconds, None without segments."""
    d = Path(dump_dir)
    recordings = {k: v for k, v, _ in read_table(d / "wav.scp")}
    if not (d / "segments").is_file():
        return {k: (v, None, None) for k, v in recordings.items()}
    specs = {}
    for key, value, line in read_table(d / "segments"):
        reco, start, end = value.split()
        if reco not in recordings:
            raise DataError(d / "segments", f"recording '{reco}' of '{key}' is not in wav.scp", line)
        specs[key] = (recordings[reco], float(start), float(end))
    return specs


def read_span(spec, start=None, end=None):
    """An utterance's 16 kHz samples: the whole recording, or its segment [start, end) seconds.
    A segment of a file is read alone (a TED talk is 15 minutes, its segments seconds); a pipe
    cannot seek, so it is read whole. Sample arithmetic as stage 2's dump (data/features.py)."""
    path = Path(spec.strip())
    if start is None or spec.strip().endswith("|") or not path.is_file():
        wave = read_audio(spec)  # it names a missing file or a failed pipe clearly
        return wave if start is None else wave[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    sr = soundfile.info(str(path)).samplerate
    if sr != SAMPLE_RATE:  # resampled whole, as the dump does, so that the samples agree
        return read_audio(spec)[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    wave, _ = soundfile.read(str(path), start=int(start * sr), stop=int(end * sr), dtype="float32", always_2d=True)
    return wave.mean(axis=1)


class OnlineFeatures:
    """A mapping utt -> features computed from the audio on each access, like the kaldiio mapping
    of a dumped feats.scp: fbank (frames, bins) or the waveform (samples, 1), as the dump dir's
    online_features.json says; `set_epoch` chooses the speed factors' draw."""

    def __init__(self, dump_dir, speed_factors=None, seed=0):
        conf = read_online_conf(dump_dir)
        self.feats_type = conf["feats_type"]
        self.features = online_feature_function(self.feats_type, conf.get("num_mel_bins", 80))
        self.specs = audio_specs(dump_dir)
        self.factors = [float(f) for f in speed_factors or []]
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def wave(self, utt):
        spec, start, end = self.specs[utt]
        return change_speed(read_span(spec, start, end), speed_factor(self.factors, self.seed, self.epoch, utt))

    def __getitem__(self, utt):
        return self.features(self.wave(utt))

    def __contains__(self, utt):
        return utt in self.specs

    def __len__(self):
        return len(self.specs)


def write_lengths_and_stats(wav_scp, out_prefix, segments=None, num_mel_bins=80, feats_type="fbank_online"):
    """Stage 2 of an on-the-fly dump, one job: the features of every utterance are computed, as
    for a dump, but only `<out_prefix>.num_frames` (frames, or samples for raw_online) and their
    CMVN sums `<out_prefix>.stats.npz` are written (data/cmvn.py merges the jobs' sums). The
    sums are what stage 2 of the dumped kind gives (`raw`: over the samples), whether or not
    the model normalises with them."""
    from ee_asr.data.cmvn import write_stats

    features = online_feature_function(feats_type, num_mel_bins)
    dim = num_mel_bins if feats_type == "fbank_online" else 1
    total, total_sq, count, n = np.zeros(dim), np.zeros(dim), 0, 0
    lens = Path(f"{out_prefix}.num_frames")
    with atomic_path(lens) as tmp:
        with open(tmp, "w") as nf:
            for key, feats in iter_features(wav_scp, segments, features):
                nf.write(f"{key} {len(feats)}\n")
                f64 = feats.astype(np.float64)
                total, total_sq, count, n = total + f64.sum(0), total_sq + (f64 ** 2).sum(0), count + len(feats), n + 1
    write_stats({"count": np.array(count), "sum": total, "sum_square": total_sq}, f"{out_prefix}.stats.npz")
    return n
