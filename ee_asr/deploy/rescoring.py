"""Attention rescoring in the torch-free runtime: an exported AED's exit (its segments, deploy/
runtime.py) gives CTC log-probs and hidden states; flashlight-text's compiled beam gives the CTC
N-best; the exit's decoder graph (export/decoders.py) scores all of them teacher-forced in one
run; the rule of exits/rescore_rule.py picks the answer, as decode/attention_rescoring.py does.

  rt = EarlyExitOnnx("exp/<tag>/onnx", max_layer=6)
  rescoring = OnnxRescoring(rt, nbest_size=10, ctc_weight=0.5)
  ids = rescoring.decode(feats_list, 6)
"""

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ee_asr.common.errors import UserError
from ee_asr.deploy.runtime import pad
from ee_asr.exits.rescore_rule import best_index, check_weights, combine, hypothesis_ys


class OnnxRescoring:
    def __init__(self, runtime, nbest_size=None, ctc_weight=None, length_bonus=None, token_beam=5, int8=False,
                 num_threads=1):
        """`runtime`: an EarlyExitOnnx of an exported AED; its loaded exits' decoders are loaded
        (`int8`: the quantised ones). Options left None: the manifest's `rescoring` (the export's)."""
        from ee_asr.exits.ctc_nbest import CtcNbest  # flashlight-text: needed only by rescoring

        m = runtime.manifest
        saved = m.get("rescoring") or {}
        nbest_size = saved.get("nbest_size", 10) if nbest_size is None else nbest_size
        ctc_weight = saved.get("ctc_weight", 0.5) if ctc_weight is None else ctc_weight
        length_bonus = saved.get("length_bonus", 0.0) if length_bonus is None else length_bonus
        try:
            check_weights(nbest_size, ctc_weight)
        except ValueError as e:
            raise UserError(str(e)) from None
        self.rt, self.ctc_weight, self.length_bonus = runtime, ctc_weight, length_bonus
        decoders = m.get("decoders")
        if not decoders:
            raise UserError(f"{Path(runtime.dir) / 'manifest.json'} lists no decoders: attention rescoring needs an "
                            "exported AED (model: aed_ee), exported again with this version")
        self.sos_eos = m["vocab_size"] - 1
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        key = "int8" if int8 else "fp32"
        self.entries, self.sessions = decoders[:len(runtime.exit_layers)], []
        for entry in self.entries:
            if key not in entry:
                raise UserError(f"{runtime.dir}: no {key} decoder for exit {entry['exit']} (export with --int8)")
            path = Path(runtime.dir) / entry[key]
            if not path.is_file():
                raise UserError(f"{path} named by the manifest does not exist")
            self.sessions.append(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))
        self.nbest = CtcNbest(nbest_size, token_beam)

    def rescore(self, exit_index, hidden, lengths, log_probs):
        """One exit's raw hidden (B, T, D), lengths (B,), CTC log_probs (B, T, V) -> per utterance
        [(token tuple, ctc, att, score), ...] in the CTC beam's order."""
        nbests = [self.nbest.nbest(log_probs[b, :n]) for b, n in enumerate(lengths.tolist())]
        hyps = [h for nb in nbests for h, _ in nb]
        hyp_utt = np.array([b for b, nb in enumerate(nbests) for _ in nb], dtype=np.int64)
        ys, ys_lens = hypothesis_ys(hyps, self.sos_eos)
        feeds = {"hidden": hidden, "lengths": lengths.astype(np.int64), "hyp_utt": hyp_utt, "ys": ys,
                 "ys_lens": ys_lens}
        att = self.sessions[exit_index].run(None, {n: feeds[n] for n in self.entries[exit_index]["inputs"]})[0]
        out, k = [], 0
        for nb in nbests:
            a = att[k:k + len(nb)].tolist()
            k += len(nb)
            total = combine([s for _, s in nb], a, [len(h) for h, _ in nb], self.ctc_weight, self.length_bonus)
            out.append([(h, c, ai, t) for (h, c), ai, t in zip(nb, a, total)])
        return out

    def hypotheses(self, exit_index, hidden, lengths, log_probs):
        """The rescored best token-id list per utterance."""
        return [list(nb[best_index([t for *_, t in nb])][0])
                for nb in self.rescore(exit_index, hidden, lengths, log_probs)]

    def decode(self, feats, layer):
        """feats: list of (T, F) float32 arrays -> rescored token ids at exit `layer` per utterance."""
        if layer not in self.rt.exit_layers:
            raise UserError(f"exit {layer} is not loaded (exits: {self.rt.exit_layers})")
        for i, f in enumerate(feats):
            self.rt.check_frames(len(f), f"utterance {i}")
        carry = pad(feats)
        for i, e in enumerate(self.rt.exit_layers):
            logp, carry = self.rt.run_segment(i, carry)
            if e == layer:
                return self.hypotheses(i, carry["hidden"], carry["lengths"], logp)

    def decode_every_exit(self, feats):
        """Rescored ids at every loaded exit for every utterance: [{layer: ids}, ...] (the
        interface of EarlyExitOnnx.decode_every_exit, so the int8 check reads either)."""
        for i, f in enumerate(feats):
            self.rt.check_frames(len(f), f"utterance {i}")
        carry, out = pad(feats), [{} for _ in feats]
        for i, layer in enumerate(self.rt.exit_layers):
            logp, carry = self.rt.run_segment(i, carry)
            for row, ids in enumerate(self.hypotheses(i, carry["hidden"], carry["lengths"], logp)):
                out[row][layer] = ids
        return out
