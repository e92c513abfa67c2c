"""Reading audio named by a wav.scp entry: a file path, or a Kaldi-style pipe ending in '|'."""

import io
import subprocess
from math import gcd
from pathlib import Path

import numpy as np
import soundfile

from ee_asr.common.errors import UserError


class AudioError(UserError):
    pass


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
    if not path.is_file():
        raise AudioError(f"file '{path}' does not exist")
    return path


def resample(wave, sr, target_sr):
    if sr == target_sr:
        return wave
    from scipy.signal import resample_poly

    g = gcd(sr, target_sr)
    return resample_poly(wave, target_sr // g, sr // g).astype(np.float32)


def read_audio(spec, target_sr=16000, start=None, end=None):
    """Return mono float32 samples in [-1, 1] at `target_sr`; start/end in seconds."""
    source = _open(spec)
    try:
        wave, sr = soundfile.read(source, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise AudioError(f"cannot decode '{spec}': {e}") from None
    wave = wave.mean(axis=1)
    if start is not None:
        wave = wave[int(start * sr): int(end * sr) if end is not None else None]
    if wave.size == 0:
        raise AudioError(f"'{spec}' holds no samples")
    return resample(wave, sr, target_sr)


def check_audio_readable(spec):
    """Return None when the audio header can be read, else a short description of the problem."""
    spec = spec.strip()
    if spec.endswith("|"):
        return None  # a pipe is only checked when it is run: running every pipe here doubles the cost
    try:
        info = soundfile.info(str(_open(spec)))
    except AudioError as e:
        return str(e)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        return f"cannot read '{spec}': {e}"
    if info.frames == 0:
        return f"'{spec}' holds no samples"
    return None
