"""The ONNX Runtime backend of the exit engine (exits/engine.py): the exported segments, one per
exit, run one after another; segments above the deepest exit within `max_layers` are not even
loaded, and the engine never runs those above an utterance's exit. No PyTorch.

  engine = onnx_engine("exp/<tag>/onnx", max_layers=4)
  results = engine.decode([feats_a, feats_b], Policy("entropy", 0.05))
"""

from pathlib import Path

import numpy as np

from ee_asr.common.errors import UserError
from ee_asr.deploy.manifest import load_exit_classifier, read_manifest
from ee_asr.deploy.sessions import load_session, session_options
from ee_asr.exits.blank_skip import central_positions, with_blank_skipping
from ee_asr.exits.engine import ExitEngine
from ee_asr.exits.scores import ExitScorer

NBEST_TOKEN_BEAM = 5  # as the PyTorch engine's (decode/torch_backend.py)


def pad(feats):
    """A list of (T, F) arrays -> the first segment's inputs: zero-padded batch and lengths."""
    lens = np.array([len(f) for f in feats], np.int64)
    x = np.zeros((len(feats), int(lens.max()), feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        x[i, :len(f)] = f
    return {"feats": x, "feats_lens": lens}


class OnnxBackend:
    def __init__(self, onnx_dir, max_layers=None, int8=False, num_threads=1):
        """Load the segments up to the deepest exit within `max_layers` (all by default); `int8`
        picks the quantised graphs."""
        self.dir, self.manifest = Path(onnx_dir), read_manifest(onnx_dir)
        m = self.manifest
        exits = [e for e in m["exit_layers"] if max_layers is None or e <= max_layers]
        if not exits:
            raise UserError(f"max_layers {max_layers} is below the first exit ({m['exit_layers'][0]})")
        opts = session_options(num_threads)
        key = "int8" if int8 else "fp32"
        self.sessions = []
        for seg in m["segments"][:len(exits)]:
            if key not in seg:
                raise UserError(f"{self.dir}: no {key} graph for exit {seg['exit']} (export with --int8)")
            path = self.dir / seg[key]
            if not path.is_file():
                raise UserError(f"{path} named by the manifest does not exist")
            self.sessions.append(load_session(path, opts))
        self.exit_layers = exits
        self.min_frames, self.max_frames = m["min_frames"], m["max_frames"]
        self._classifier = None

    def min_input_frames(self):
        return self.min_frames

    def exit_classifier(self):
        if self._classifier is None:  # read on first use: only the learned policy needs it
            self._classifier = load_exit_classifier(self.dir, self.manifest)
        return self._classifier

    def check_frames(self, num_frames, name, seconds=None):
        """UserError naming `name` when the model cannot take `num_frames` feature frames
        (`seconds`: the audio's duration, for the message)."""
        shift = self.manifest["frame_shift_ms"] / 1000
        seconds = num_frames * shift if seconds is None else seconds
        if num_frames < self.min_frames:
            raise UserError(f"'{name}' is too short ({seconds:.2f}s) to transcribe")
        if num_frames > self.max_frames:
            raise UserError(f"'{name}' is too long ({seconds:.2f}s): the exported model takes at most "
                            f"{self.max_frames} frames ({self.max_frames * shift:.1f}s; see manifest max_frames)")

    def start(self, inputs):
        """inputs: a list of (T, F) float32 arrays."""
        for i, f in enumerate(inputs):
            self.check_frames(len(f), f"utterance {i}")
        return pad(inputs)

    def advance(self, carry, exit_index):
        """Run segment `exit_index`. carry: {"feats", "feats_lens"} before the first, else what the
        segment before returned: {"hidden", "lengths"} and, for Conformers, "pos_emb"."""
        seg = self.manifest["segments"][exit_index]
        out = dict(zip(seg["outputs"], self.sessions[exit_index].run(None, {n: carry[n] for n in seg["inputs"]})))
        nxt = {k: v for k, v in carry.items() if k not in ("feats", "feats_lens")}
        nxt.update({k: v for k, v in out.items() if k != "hidden_out"}, hidden=out["hidden_out"])
        return nxt

    def hidden(self, carry):
        """The exit's raw hidden states (B, T, D) and lengths: what the decoder graphs read (they
        normalise them themselves)."""
        return carry["hidden"], carry["lengths"]

    def log_probs(self, carry, exit_index):
        return carry["log_probs"], carry["lengths"]

    def select(self, carry, rows):
        # the positional embedding is shared by every row; the log-probs are the exit's, done with
        return {k: v if k == "pos_emb" else v[rows] for k, v in carry.items() if k != "log_probs"}

    def keep_frames(self, carry, order, lengths):
        """Blank skipping (exits/blank_skip.py): frames `order` (B, T') of each row, `lengths` valid."""
        out = {k: v for k, v in carry.items() if k != "log_probs"}
        out.update(hidden=np.take_along_axis(carry["hidden"], order[:, :, None], 1),
                   lengths=np.asarray(lengths, carry["lengths"].dtype))
        if "pos_emb" in carry:
            out["pos_emb"] = central_positions(carry["pos_emb"], order.shape[1])
        return out


def onnx_engine(onnx_dir, max_layers=None, int8=False, num_threads=1, nbest_size=10, policy=None, rescoring=None,
                blank_skip=None):
    """The exit engine over an exported model; `policy`: the one it will decode with, so that the
    learned policy's exit classifier is read (and a missing one named) before any audio;
    `rescoring`: an exported AED's attention rescoring (deploy/rescoring.py) with these options
    ({} for the manifest's), else greedy CTC; `blank_skip`: (after_layers, threshold) to drop
    blank frames above those exits (exits/blank_skip.py)."""
    backend = OnnxBackend(onnx_dir, max_layers, int8, num_threads)
    classifier = backend.exit_classifier() if policy == "learned" else None
    search = None
    if rescoring is not None:
        from ee_asr.deploy.rescoring import OnnxRescoring

        search = OnnxRescoring(backend, int8=int8, num_threads=num_threads, **rescoring)
    backend = with_blank_skipping(backend, *(blank_skip or ((), None)))
    return ExitEngine(backend, ExitScorer(nbest_size, NBEST_TOKEN_BEAM, classifier), search)
