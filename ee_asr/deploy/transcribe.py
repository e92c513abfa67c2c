"""Transcribe audio with the ONNX runtime: the same reading, checks, errors and results as
decode/transcribe.py's Transcriber, for `transcribe --backend onnx`."""

import time
from pathlib import Path

import numpy as np

from ee_asr.data.audio import read_audio
from ee_asr.data.fbank import compute_fbank
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.deploy.features import fbank_options
from ee_asr.deploy.runtime import EarlyExitOnnx, check_token_model

SAMPLE_RATE = 16000  # what ee-asr's features and models are built for


def onnx_dir_of(exp_dir, onnx_dir=None):
    """`--onnx-dir` when given, else the experiment dir's `onnx/` (where export_onnx writes)."""
    return Path(onnx_dir) if onnx_dir else Path(exp_dir) / "onnx"


class OnnxTranscriber:
    def __init__(self, onnx_dir, policy, threshold, nbest_size=10, max_layer=None, int8=False, num_threads=1):
        self.model = EarlyExitOnnx(onnx_dir, max_layer=max_layer, int8=int8, num_threads=num_threads)
        m = self.model.manifest
        self.tokenizer = Tokenizer(check_token_model(onnx_dir, m))
        # "raw": the model reads the waveform itself (wav2vec2), one sample per frame
        self.fbank = None if m["features"] == "raw" else fbank_options(m["fbank"])
        self.policy, self.threshold, self.nbest_size = policy, threshold, nbest_size
        if policy == "learned":  # a missing classifier fails here, before any audio is read
            self.model.exit_classifier()

    def features(self, spec):
        """Checked features of a wav.scp-style audio spec; UserError if unreadable, too short or too long."""
        wave = read_audio(spec, target_sr=SAMPLE_RATE)
        if self.fbank is None:
            feats = wave[:, None].astype(np.float32)
        else:
            feats = compute_fbank(wave, self.fbank, self.model.manifest["fbank"]["sample_scale"])
        self.model.check_frames(len(feats), spec, seconds=len(wave) / SAMPLE_RATE)
        return feats

    def transcribe(self, spec):
        """Return {text, exit, seconds} for a wav.scp-style audio spec; UserError if unusable."""
        start = time.perf_counter()
        feats = self.features(spec)
        res = self.model.decode([feats], self.policy, self.threshold, self.nbest_size, names=[spec])[0]
        return {"text": self.tokenizer.decode(res["ids"]), "exit": res["exit"],
                "seconds": time.perf_counter() - start}


def transcriber_from_args(args):
    """The OnnxTranscriber that bin/transcribe.py's options ask for (--backend onnx)."""
    # --max-layers: segments above the deepest exit within the budget are not even loaded
    return OnnxTranscriber(onnx_dir_of(args.exp_dir, args.onnx_dir), args.policy, args.threshold, args.nbest_size,
                           max_layer=args.max_layers, num_threads=args.num_threads)
