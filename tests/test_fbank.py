"""data/fbank.py against Kaldi's own numerics (kaldi-native-fbank, the C++ front end that Kaldi,
sherpa-onnx and the earlier dumps of this project use)."""

import kaldi_native_fbank as knf
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ee_asr.common.errors import UserError
from ee_asr.data.audio import MAX_PEAK
from ee_asr.data.fbank import Fbank, FbankOptions, make_fbank
from ee_asr.deploy.features import manifest_fbank


def kaldi_fbank(wave, num_mel_bins=80, low_freq=20.0, high_freq=0.0):
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = num_mel_bins
    opts.mel_opts.low_freq, opts.mel_opts.high_freq = low_freq, high_freq
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, (np.asarray(wave, np.float32) * 32768).tolist())
    fb.input_finished()
    return np.array([fb.get_frame(i) for i in range(fb.num_frames_ready)], np.float32).reshape(-1, num_mel_bins)


def speech_like(n, seed):
    """Tones, noise, a quiet stretch and a stretch of digital silence: every energy range a
    recording has, down to the floor of the log."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t) + 0.05 * rng.standard_normal(n)
    wave[n // 3: n // 2] *= 1e-4
    wave[n // 2: n // 2 + n // 10] = 0.0
    return wave.astype(np.float32)


@pytest.mark.parametrize("n", [1, 2, 79, 80, 119, 120, 121, 239, 240, 399, 400, 401, 1600, 16001, 36_817])
def test_equals_kaldi_at_every_length(n):
    # the shortest ones reflect the signal more than once at its edges, as Kaldi does
    ours, kaldi = make_fbank()(speech_like(n, n)), kaldi_fbank(speech_like(n, n))
    assert ours.shape == kaldi.shape and ours.dtype == np.float32
    # float32 FFTs of different order: log-energies agree to 1e-3 where the energy is far above the floor
    np.testing.assert_allclose(ours, kaldi, rtol=0, atol=2e-3)


@pytest.mark.parametrize("bins,low,high", [(80, 20.0, 0.0), (40, 0.0, -400.0), (23, 64.0, 7000.0)])
def test_equals_kaldi_for_other_banks(bins, low, high):
    wave = speech_like(24_000, bins)
    ours = Fbank(FbankOptions(num_mel_bins=bins, low_freq=low, high_freq=high))(wave)
    np.testing.assert_allclose(ours, kaldi_fbank(wave, bins, low, high), rtol=0, atol=2e-3)


def test_empty_input_has_no_frames():
    assert make_fbank()(np.zeros(0, np.float32)).shape == (0, 80)


@pytest.mark.parametrize("spec,match", [
    ({"num_mel_bins": 0}, "0 mel bins cannot be computed: num_mel_bins must be >= 1"),
    ({"num_mel_bins": 400}, "400 mel bins cannot be computed"),
    ({"low_freq": 9000.0}, "low_freq < high_freq"),
    ({"dither": 1.0}, "only dither 0"),
    ({"snip_edges": True}, "snip_edges"),
    ({"frame_length": 25}, "unknown key"),
])
def test_bad_manifest_options_are_named(tmp_path, spec, match):
    with pytest.raises(UserError, match=match) as e:
        manifest_fbank(tmp_path, {**FbankOptions().spec(), **spec})
    assert f"{tmp_path}/manifest.json: fbank: " in str(e.value)


@settings(max_examples=200, deadline=None)
@given(wave=arrays(np.float32, st.integers(0, 3000), elements=st.floats(-MAX_PEAK, MAX_PEAK, width=32)))
def test_any_audio_the_reader_accepts_gives_finite_features(wave):
    # read_audio refuses NaN, infinity and peaks above MAX_PEAK; anything else must stay finite
    feats = make_fbank()(wave)
    assert feats.shape == (make_fbank().num_frames(len(wave)), 80) and np.isfinite(feats).all()
