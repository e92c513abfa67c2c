"""Speech in, text out, with early exit: what a program calls, whichever backend runs the model.

  from ee_asr import Recognizer
  rec = Recognizer.from_onnx("exp/<tag>/onnx", policy="entropy", threshold=0.05)   # no PyTorch
  rec = Recognizer.from_experiment("exp/<tag>", policy="seqpost", threshold=0.08, max_layers=8)
  for r in rec.transcribe(["a.wav", "b.flac"]):
      print(r.text, r.exit)

`transcribe` takes audio paths (or wav.scp specs: a pipe ending in `|`) and 16 kHz float
waveforms, one or a list; every utterance goes through the one exit engine (exits/engine.py)
with the recognizer's policy. The command-line `transcribe` is a thin face over this.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ee_asr.common.errors import UserError
from ee_asr.data.audio import read_audio
from ee_asr.data.fbank import SAMPLE_RATE
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.exits.policies import Policy
from ee_asr.score.calibration import CALIBRATION_FILE, calibrated_threshold


@dataclass
class Transcript:
    text: str
    exit: int
    seconds: float
    ids: list = field(repr=False)
    scores: dict = field(repr=False)  # {layer: {score: value}} at the exits it passed


def chosen_threshold(policy, threshold, max_wer_increase, calibration):
    """The threshold given, or the one calibrated to keep WER within `max_wer_increase` of the last
    exit's (bin.calibrate_exits; `calibration()` -> the calibration.json's path, asked only then)."""
    if max_wer_increase is None:
        return threshold
    if threshold is not None:
        raise UserError("give a threshold or max_wer_increase, not both")
    return calibrated_threshold(calibration(), policy, max_wer_increase)


def experiment_threshold(policy, threshold, max_wer_increase, exp_dir):
    """chosen_threshold for a PyTorch experiment: calibrated by its own <exp_dir>/calibration.json."""
    return chosen_threshold(policy, threshold, max_wer_increase, lambda: Path(exp_dir) / CALIBRATION_FILE)


def _policy(policy, threshold, max_layers, exit_layers):
    """A checked Policy; a fixed exit without threshold is the last exit (the full model)."""
    if threshold is None:
        if policy != "fixed":
            raise UserError(f"the {policy} policy needs a threshold")
        threshold = exit_layers[-1]
    if max_layers is not None and max_layers < exit_layers[0]:
        raise UserError(f"max_layers {max_layers} is below the first exit ({exit_layers[0]})")
    return Policy(policy, float(threshold), max_layers)


class Recognizer:
    def __init__(self, engine, tokenizer, features, policy, to_input, check_frames):
        """Use from_experiment or from_onnx. `features(wave) -> (T, F)`; `to_input(feats)` -> the
        backend's batch of one; `check_frames(n, name, seconds)` refuses what the model cannot take."""
        self.engine, self.tokenizer, self.policy = engine, tokenizer, policy
        self._features, self._to_input, self._check_frames = features, to_input, check_frames

    @classmethod
    def from_experiment(cls, exp_dir, policy="fixed", threshold=None, max_layers=None, nbest_size=10,
                        device="cpu", model_file="model.pth", search=None, max_wer_increase=None, blank_skip=None):
        """A trained experiment in PyTorch; `search`: a hypothesis search of decode/ (greedy CTC
        by default; a JointBeamSearch or an LMBeamSearch); `max_wer_increase`: instead of a
        threshold, the one calibrated for it (<exp_dir>/calibration.json); `blank_skip`: (after_layers,
        threshold) to drop blank frames above those exits (exits/blank_skip.py)."""
        threshold = experiment_threshold(policy, threshold, max_wer_increase, exp_dir)
        from ee_asr.decode.torch_backend import torch_engine
        from ee_asr.exits.exit_classifier import load_for_experiment
        from ee_asr.models.load import load_trained

        model, config = load_trained(exp_dir, model_file, device)
        classifier = load_for_experiment(exp_dir) if policy == "learned" else None
        engine = torch_engine(model, nbest_size, classifier=classifier, search=search, blank_skip=blank_skip)
        return cls.from_engine(engine, config, policy, threshold, max_layers, device)

    @classmethod
    def from_engine(cls, engine, config, policy="fixed", threshold=None, max_layers=None, device="cpu"):
        """A recognizer over a PyTorch exit engine already built (decode/torch_backend.py) and the
        experiment's resolved config."""
        import torch

        from ee_asr.data.features import feature_function

        # input size 1: the model reads the waveform itself (wav2vec2)
        features = feature_function("raw" if config["input_size"] == 1 else "fbank", config["input_size"])
        min_frames = engine.backend.min_input_frames()

        def check_frames(n, name, seconds):
            if n < min_frames:
                raise UserError(f"'{name}' is too short ({seconds:.2f}s) to transcribe")

        return cls(engine, Tokenizer(config["bpemodel"]),
                   features,
                   _policy(policy, threshold, max_layers, engine.exit_layers),
                   lambda f: (torch.from_numpy(f)[None].to(device), torch.tensor([len(f)], device=device)),
                   check_frames)

    @classmethod
    def from_onnx(cls, onnx_dir, policy="fixed", threshold=None, max_layers=None, nbest_size=10, int8=False,
                  num_threads=1, max_wer_increase=None, rescoring=None, blank_skip=None):
        """An ONNX export (bin.export_onnx) in ONNX Runtime, without PyTorch; segments above the
        deepest exit within `max_layers` are not loaded; `max_wer_increase`: instead of a
        threshold, the one calibrated for it (the calibration.json exported with the model);
        `rescoring`: an exported AED's attention rescoring with these options ({}: the manifest's);
        `blank_skip`: as from_experiment's."""
        from ee_asr.deploy.features import manifest_fbank
        from ee_asr.deploy.manifest import calibration_file, check_token_model
        from ee_asr.deploy.onnx_backend import onnx_engine

        engine = onnx_engine(onnx_dir, max_layers, int8, num_threads, nbest_size, policy, rescoring, blank_skip)
        m = engine.backend.manifest
        threshold = chosen_threshold(policy, threshold, max_wer_increase, lambda: calibration_file(onnx_dir, m))
        tokenizer = Tokenizer(check_token_model(onnx_dir, m))
        if m["features"] == "raw":
            features = lambda w: w[:, None].astype(np.float32)  # noqa: E731
        else:
            features = manifest_fbank(onnx_dir, m["fbank"])
        return cls(engine, tokenizer, features, _policy(policy, threshold, max_layers, engine.exit_layers),
                   lambda f: [f], engine.backend.check_frames)

    def features(self, audio, name=None):
        """Checked features of an audio path/spec or a 16 kHz waveform; UserError if unusable."""
        if isinstance(audio, (str, Path)):
            name, wave = str(audio), read_audio(str(audio), target_sr=SAMPLE_RATE)
        else:
            wave = np.asarray(audio, dtype=np.float32)
            if wave.ndim != 1:
                raise UserError(f"'{name}': a waveform must be one channel of 16 kHz samples, not shape {wave.shape}")
        feats = self._features(wave)
        self._check_frames(len(feats), name, len(wave) / SAMPLE_RATE)
        return feats

    def transcribe_one(self, audio, name=None, max_layers=None):
        """One utterance -> Transcript; `max_layers` caps this request below the recognizer's budget."""
        start = time.perf_counter()
        feats = self.features(audio, name or "waveform")
        policy = self.policy if max_layers is None else _policy(
            self.policy.name, self.policy.threshold, max_layers, self.engine.exit_layers)
        r = self.engine.decode(self._to_input(feats), policy)[0]
        return Transcript(self.tokenizer.decode(r["ids"]), r["exit"], time.perf_counter() - start, r["ids"],
                          r["scores"])

    def transcribe(self, audio):
        """A path, spec or waveform -> Transcript; a list of them -> a list, in order."""
        if isinstance(audio, (list, tuple)):
            return [self.transcribe_one(a, f"waveform {i}") for i, a in enumerate(audio)]
        return self.transcribe_one(audio)
