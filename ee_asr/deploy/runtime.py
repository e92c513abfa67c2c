"""Early-exit decoding with ONNX Runtime, segment by segment: after each exit's segment the policy
decides, utterances that exit leave the batch, and segments above the last needed exit never run.

  model = EarlyExitOnnx("exp/<tag>/onnx", max_layer=4)      # loads only segments up to exit 4
  results = model.decode([feats_a, feats_b], "entropy", 0.05)

The same rule as decode/dynamic.py (exits/policies.py) picks the exit, from the same scores
(deploy/scores.py); `budget` caps the layers an utterance may use (the largest exit at or below
it answers when no earlier one qualified). Every online policy runs here; `learned` reads the
exit classifier that export_onnx copies into the onnx dir (manifest key "exit_classifier").
"""

import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ee_asr.common.digest import file_sha256
from ee_asr.common.errors import UserError
from ee_asr.deploy.scores import exit_scores, greedy_ids
from ee_asr.deploy.sessions import load_session
from ee_asr.exits.ctc_prefix_beam import prefix_beam_search
from ee_asr.exits.exit_classifier import ExitClassifier
from ee_asr.exits.policies import check_policy, last_exit, policy_scores, stops_at

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def read_manifest(onnx_dir):
    path = Path(onnx_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path} does not exist: export the model first (python -m ee_asr.bin.export_onnx)")
    manifest = json.loads(path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: format_version {manifest.get('format_version')} is not {FORMAT_VERSION}")
    return manifest


def check_token_model(onnx_dir, manifest):
    path = Path(onnx_dir) / manifest["token_model"]
    if not path.is_file():
        raise UserError(f"token model {path} named by the manifest does not exist")
    if file_sha256(path) != manifest["token_model_sha256"]:
        raise UserError(f"token model {path} is not the one the model was exported with (sha256 differs)")
    return path


def load_exit_classifier(onnx_dir, manifest):
    """The exit classifier the model was exported with, for the `learned` policy; UserError naming
    the fix when the export carries none or the file is not the exported one."""
    name = manifest.get("exit_classifier")
    if not name:
        raise UserError(f"the learned policy needs an exit classifier, and {Path(onnx_dir) / MANIFEST} names none: "
                        "fit one (python -m ee_asr.bin.fit_exit_classifier --exp-dir <exp> --data-dir <dev dump>), "
                        "then export again (python -m ee_asr.bin.export_onnx --exp-dir <exp>)")
    path = Path(onnx_dir) / name
    if not path.is_file():
        raise UserError(f"exit classifier {path} named by the manifest does not exist")
    if file_sha256(path) != manifest.get("exit_classifier_sha256"):
        raise UserError(f"exit classifier {path} is not the one the model was exported with (sha256 differs)")
    classifier = ExitClassifier.load(path)
    if classifier.exit_layers != manifest["exit_layers"]:
        raise UserError(f"{path} was fitted for exits {classifier.exit_layers}, "
                        f"the model has {manifest['exit_layers']}")
    return classifier


def pad(feats):
    """A list of (T, F) arrays -> the first segment's inputs: zero-padded batch and lengths."""
    lens = np.array([len(f) for f in feats], np.int64)
    x = np.zeros((len(feats), int(lens.max()), feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        x[i, :len(f)] = f
    return {"feats": x, "feats_lens": lens}


class EarlyExitOnnx:
    def __init__(self, onnx_dir, max_layer=None, int8=False, num_threads=1):
        """Load the segments up to the largest exit <= `max_layer` (all by default); `int8`
        picks the quantised graphs."""
        self.dir, self.manifest = Path(onnx_dir), read_manifest(onnx_dir)
        m = self.manifest
        exits = [e for e in m["exit_layers"] if max_layer is None or e <= max_layer]
        if not exits:
            raise UserError(f"max_layer {max_layer} is below the first exit ({m['exit_layers'][0]})")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
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
        self._classifier, self._nbest = None, {}

    def _nbest_search(self, nbest_size):
        if nbest_size not in self._nbest:  # the decoder is built once per N-best size
            self._nbest[nbest_size] = nbest_search(nbest_size)
        return self._nbest[nbest_size]

    def exit_classifier(self):
        if self._classifier is None:  # read on first use: only the learned policy needs it
            self._classifier = load_exit_classifier(self.dir, self.manifest)
        return self._classifier

    def check_frames(self, num_frames, name, seconds=None):
        """UserError naming `name` when the model cannot take `num_frames` feature frames (the
        message of decode/transcribe.py for too short ones; `seconds` the audio's duration)."""
        shift = self.manifest["frame_shift_ms"] / 1000
        seconds = num_frames * shift if seconds is None else seconds
        if num_frames < self.min_frames:
            raise UserError(f"'{name}' is too short ({seconds:.2f}s) to transcribe")
        if num_frames > self.max_frames:
            raise UserError(f"'{name}' is too long ({seconds:.2f}s): the exported model takes at most "
                            f"{self.max_frames} frames ({self.max_frames * shift:.1f}s; see manifest max_frames)")

    def run_segment(self, index, carry):
        """Run segment `index`; carry: {"feats", "feats_lens"} for the first, else what the segment
        before returned: {"hidden", "lengths"} and, for Conformers, "pos_emb". Returns (log_probs, carry)."""
        seg = self.manifest["segments"][index]
        out = dict(zip(seg["outputs"], self.sessions[index].run(None, {n: carry[n] for n in seg["inputs"]})))
        nxt = {k: v for k, v in carry.items() if k not in ("feats", "feats_lens")}
        nxt.update({k: v for k, v in out.items() if k not in ("log_probs", "hidden_out")}, hidden=out["hidden_out"])
        return out["log_probs"], nxt

    def decode(self, feats, policy, threshold, nbest_size=10, budget=None, names=None):
        """feats: list of (T, F) float32 arrays. Return one dict per utterance (input order): exit,
        layers_computed, ids, the policy's scores at every exit it passed below the last (which
        answers anyway, so nothing is scored there), seconds from the start to its exit."""
        check_policy(policy)  # every online policy: the runtime computes all their scores
        if budget is not None and budget < self.exit_layers[0]:
            raise UserError(f"budget {budget} is below the first exit ({self.exit_layers[0]})")
        last = last_exit(self.exit_layers, policy, threshold, budget)
        exits = [e for e in self.exit_layers if e <= last]
        fields = policy_scores(policy)
        classifier = self.exit_classifier() if "p_as_good" in fields else None
        nbest = self._nbest_search(nbest_size) if "nbest_posterior" in fields else None
        names = names or [f"utterance {i}" for i in range(len(feats))]
        for f, name in zip(feats, names):
            self.check_frames(len(f), name)
        start = time.perf_counter()
        carry = pad(feats)
        active = np.arange(len(feats))
        results = [{"scores": {}} for _ in feats]
        below = None  # the active utterances' greedy ids at the exit below (the agree policy's reference)
        for i, layer in enumerate(exits):
            logp, carry = self.run_segment(i, carry)
            olens = carry["lengths"]
            scores, greedy = exit_scores(logp, olens, fields if layer < last else (), nbest, below,
                                         classifier, layer)
            stop = np.array([stops_at(policy, threshold, layer, s, last) for s in scores])
            now = time.perf_counter() - start
            for row, utt in enumerate(active.tolist()):
                results[utt]["scores"][layer] = scores[row]
                if stop[row]:
                    ids = greedy[row] if greedy is not None else greedy_ids(logp[row], olens[row])
                    results[utt].update(exit=layer, layers_computed=layer, ids=ids, seconds=now)
            if stop.all():
                break
            keep = ~stop
            active = active[keep]
            below = None if greedy is None else [g for g, s in zip(greedy, stop) if not s]
            # the positional embedding is shared by every row
            carry = {k: v if k == "pos_emb" else v[keep] for k, v in carry.items()}
        return results

    def decode_every_exit(self, feats):
        """Greedy ids at every loaded exit for every utterance: [{layer: ids}, ...] (no exiting)."""
        for i, f in enumerate(feats):
            self.check_frames(len(f), f"utterance {i}")
        carry, out = pad(feats), [{} for _ in feats]
        for i, layer in enumerate(self.exit_layers):
            logp, carry = self.run_segment(i, carry)
            for row in range(len(feats)):
                out[row][layer] = greedy_ids(logp[row], carry["lengths"][row])
        return out


def nbest_search(nbest_size):
    """(T, V) log-probs -> N-best list: flashlight-text's compiled beam (exits/ctc_nbest.py, the
    PyTorch path's decoder) where it is installed, else the pure-Python prefix beam."""
    try:
        from ee_asr.exits.ctc_nbest import CtcNbest

        return CtcNbest(max(nbest_size, 1)).nbest
    except ImportError:
        return lambda log_probs: prefix_beam_search(log_probs, beam=nbest_size)
