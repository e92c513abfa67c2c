"""Reading audio named by a wav.scp entry: a file path, or a Kaldi-style pipe ending in '|'.

The sample-rate rule: a corpus is at SAMPLE_RATE (16 kHz). The validator refuses a wav.scp file
at another rate (a pipe that resamples, `sox in.wav -r 16000 -t wav - |`, is the fix); reading
audio for features or transcription converts another rate with a warning naming the file. Mixing
channels to mono refuses a recording whose channels cancel (one channel the other inverted),
which would otherwise become silence that trains.
"""

import io
import logging
import os
import re
import subprocess
from math import gcd
from pathlib import Path

import numpy as np
import soundfile

from ee_asr.common.errors import UserError

SAMPLE_RATE = 16000
# channels louder than -60 dBFS whose mean is 40 dB below the loudest: they cancel
CANCEL_MIN_RMS, CANCEL_RATIO = 1e-3, 1e-2
# Float files may exceed [-1, 1] a little (gain, resampling), not by orders of magnitude: beyond
# this peak they hold integer-scaled or damaged samples, whose features would be off in level or
# overflow to infinity
MAX_PEAK = 1000.0


class AudioError(UserError):
    pass


def _reason(e):
    """soundfile's own reason, without its 'Error opening <_io.BytesIO object at 0x..>:' prefix."""
    return getattr(e, "error_string", None) or str(e)


def _read_bytes_from_pipe(command):
    proc = subprocess.run(command, shell=True, capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"command '{command}' failed: {err[-1] if err else 'no output'}")
    return io.BytesIO(proc.stdout)


def _open(spec):
    spec = spec.strip()
    if spec.endswith("|"):
        return _read_bytes_from_pipe(spec[:-1])
    path = Path(spec)
    if not path.exists():
        if re.search(r"\.ark:\d+$", spec):
            raise AudioError(f"'{spec}' is a Kaldi archive offset, which ee-asr does not read: give a file or a pipe")
        if " " in spec or "\t" in spec:
            raise AudioError(f"'{spec}' is neither a file nor a pipe (a command must end in '|')")
        raise AudioError(f"file '{path}' does not exist")
    if path.is_dir():
        raise AudioError(f"'{path}' is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"file '{path}' cannot be read: permission denied")
    return path


def resample(wave, sr, target_sr):
    if sr == target_sr:
        return wave
    from scipy.signal import resample_poly

    g = gcd(sr, target_sr)
    return resample_poly(wave, target_sr // g, sr // g).astype(np.float32)


def check_channels(wave, spec, min_frames=1):
    """Mono from (N, C) samples; AudioError when the channels are not silent but their mean is
    (judged from `min_frames` on: a few samples of independent channels can cancel by chance)."""
    if wave.shape[1] == 1:
        return wave[:, 0]
    mono = wave.mean(axis=1)
    if len(wave) < min_frames:
        return mono
    loudest = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64), axis=0)).max()) if wave.size else 0.0
    if loudest > CANCEL_MIN_RMS and float(np.sqrt(np.mean(np.square(mono, dtype=np.float64)))) < CANCEL_RATIO * loudest:
        raise AudioError(f"the {wave.shape[1]} channels of '{spec}' cancel when mixed to mono (one is the other "
                         "inverted?): pick one channel in wav.scp, e.g. 'sox <file> -t wav - remix 1 |'")
    return mono


def read_audio(spec, target_sr=SAMPLE_RATE, start=None, end=None):
    """Return mono float32 samples in [-1, 1] at `target_sr`; start/end in seconds. Another
    sample rate is converted with a warning naming the file (the rule: see the module's docstring)."""
    source = _open(spec)
    try:
        wave, sr = soundfile.read(source, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise AudioError(f"cannot decode '{spec}': {_reason(e)}") from None
    if not np.isfinite(wave).all():
        raise AudioError(f"'{spec}' holds samples that are not finite numbers (NaN or infinity)")
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > MAX_PEAK:
        raise AudioError(f"'{spec}' holds samples up to {peak:.3g}, where audio is read in [-1, 1]: integer "
                         "values stored as floats, or a damaged file (rescale it, e.g. sox -v)")
    wave = check_channels(wave, spec, min_frames=sr // 100)  # 10 ms
    if start is not None:
        wave = wave[int(start * sr): int(end * sr) if end is not None else None]
    if wave.size == 0:
        raise AudioError(f"'{spec}' holds no samples")
    if sr != target_sr:
        logging.warning("'%s' is at %d Hz: converted to %d Hz", spec, sr, target_sr)
    return resample(wave, sr, target_sr)


def check_audio_readable(spec, sample_rate=SAMPLE_RATE):
    """Return None when the audio header can be read and states `sample_rate` (None: any), else a
    short description of the problem."""
    spec = spec.strip()
    if spec.endswith("|"):
        return None  # a pipe is only checked when it is run: running every pipe here doubles the cost
    try:
        info = soundfile.info(str(_open(spec)))
    except AudioError as e:
        return str(e)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        return f"cannot read '{spec}': {_reason(e)}"
    if info.frames == 0:
        return f"'{spec}' holds no samples"
    if sample_rate is not None and info.samplerate != sample_rate:
        return (f"'{spec}' is at {info.samplerate} Hz, the corpus at {sample_rate} Hz: resample it, or read it "
                f"through a pipe that does, e.g. 'sox {spec} -r {sample_rate} -t wav - |'")
    return None
