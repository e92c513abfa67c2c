"""Transcribe audio files with early exit: features, dynamic decoding, one result per file."""

import time

import torch

from ee_asr.common.errors import UserError
from ee_asr.data.audio import read_audio
from ee_asr.data.fbank import compute_fbank, make_fbank
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.dynamic import decode_dynamic


class Transcriber:
    def __init__(self, model, config, policy, threshold, nbest_size=10, device="cpu", max_layers=None, search=None):
        """`max_layers`: the request's layer budget (the deepest exit within it answers at the
        latest); `search`: an ExitSearch (e.g. with the exit classifier for `learned`)."""
        self.model, self.policy, self.threshold = model, policy, threshold
        self.nbest_size, self.device = nbest_size, device
        self.max_layers, self.search = max_layers, search
        self.tokenizer = Tokenizer(config["bpemodel"])
        # input size 1: the model reads the raw waveform (wav2vec2), else fbank of that many bins
        self.raw = config["input_size"] == 1
        self.fbank_opts = None if self.raw else make_fbank(num_mel_bins=config["input_size"])

    def transcribe(self, spec, max_layers=None):
        """Return {text, exit, seconds} for a wav.scp-style audio spec; UserError if unusable.
        `max_layers` overrides the transcriber's layer budget for this request."""
        start = time.perf_counter()
        wave = read_audio(spec)
        feats = wave[:, None] if self.raw else compute_fbank(wave, self.fbank_opts)
        if len(feats) < (1600 if self.raw else 16):
            raise UserError(f"'{spec}' is too short ({len(wave) / 16000:.2f}s) to transcribe")
        x = torch.from_numpy(feats)[None].to(self.device)
        res = decode_dynamic(self.model, x, torch.tensor([len(feats)], device=self.device), self.policy,
                             self.threshold, self.nbest_size, self.search,
                             self.max_layers if max_layers is None else max_layers)[0]
        return {"text": self.tokenizer.decode(res["ids"]), "exit": res["exit"],
                "seconds": time.perf_counter() - start}
