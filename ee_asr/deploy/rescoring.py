"""Attention rescoring in the torch-free runtime, a search of the exit engine (exits/engine.py)
over the ONNX backend (deploy/onnx_backend.py): an exported AED's exit gives CTC log-probs and
hidden states; flashlight-text's compiled beam gives the CTC N-best; the exit's decoder graph
(export/decoders.py) scores all of them teacher-forced in one run; the rule of
exits/rescore_rule.py picks the answer, as decode/attention_rescoring.py does in PyTorch.

  engine = onnx_engine("exp/<tag>/onnx", max_layers=6, rescoring={})   # the manifest's options
  results = engine.decode(feats_list, Policy("fixed", 6))
"""

from pathlib import Path

import numpy as np

from ee_asr.common.errors import UserError
from ee_asr.deploy.sessions import load_session, session_options
from ee_asr.exits.ctc_nbest import CtcNbest
from ee_asr.exits.rescore_rule import best_index, check_weights, hypothesis_ys, ranked


class OnnxRescoring:
    nbest = None  # the nbest policy keeps the CTC output's N-best posterior

    def __init__(self, backend, nbest_size=None, ctc_weight=None, length_bonus=None, token_beam=5, int8=False,
                 num_threads=1):
        """`backend`: an OnnxBackend of an exported AED; the decoders of its loaded exits are loaded
        (`int8`: the quantised ones). Options left None are those the export was checked with."""
        m = backend.manifest
        decoders = m.get("decoders")
        if not decoders:
            raise UserError(f"{Path(backend.dir) / 'manifest.json'} lists no decoders: attention rescoring needs an "
                            "exported AED (model: aed_ee), exported again with this version")
        chosen = {**(m.get("rescoring") or {}), **{k: v for k, v in (("nbest_size", nbest_size),
                  ("ctc_weight", ctc_weight), ("length_bonus", length_bonus)) if v is not None}}
        nbest_size, ctc_weight = chosen.get("nbest_size", 10), chosen.get("ctc_weight", 0.5)
        try:
            check_weights(nbest_size, ctc_weight)
        except ValueError as e:
            raise UserError(str(e)) from None
        self.ctc_weight, self.length_bonus = ctc_weight, chosen.get("length_bonus", 0.0)
        self.sos_eos = m["vocab_size"] - 1
        opts = session_options(num_threads)
        key = "int8" if int8 else "fp32"
        self.entries, self.sessions = decoders[:len(backend.exit_layers)], []
        for entry in self.entries:
            if key not in entry:
                raise UserError(f"{backend.dir}: no {key} decoder for exit {entry['exit']} (export with --int8)")
            self.sessions.append(load_session(Path(backend.dir) / entry[key], opts))
        self.source = CtcNbest(nbest_size, token_beam)

    def rescore(self, exit_index, hidden, lengths, log_probs, rows=None, log_prob_lengths=None):
        """One exit's raw hidden (B, T, D), lengths (B,), CTC log_probs (B, T, V) -> per utterance
        (of `rows`, default all) [(token tuple, ctc, att, score), ...] in the CTC beam's order;
        `log_prob_lengths`: as decode/attention_rescoring.py's."""
        rows = list(range(len(lengths))) if rows is None else list(rows)
        nbests = self.source.nbest_batch(log_probs, lengths if log_prob_lengths is None else log_prob_lengths, rows)
        hyps = [h for nb in nbests for h, _ in nb]
        hyp_utt = np.array([r for r, nb in zip(rows, nbests) for _ in nb], dtype=np.int64)
        ys, ys_lens = hypothesis_ys(hyps, self.sos_eos)
        feeds = {"hidden": hidden, "lengths": lengths.astype(np.int64), "hyp_utt": hyp_utt, "ys": ys,
                 "ys_lens": ys_lens}
        att = self.sessions[exit_index].run(None, {n: feeds[n] for n in self.entries[exit_index]["inputs"]})[0]
        return ranked(nbests, att.tolist(), self.ctc_weight, self.length_bonus)

    def hypotheses(self, view, rows, greedy=None):
        """The rescored best token-id list of each row of `rows` (the engine's search interface)."""
        hidden, lengths = view.backend.hidden(view.state)
        ranked = self.rescore(view.exit_index, hidden, lengths, view.log_probs, rows, view.lengths)
        return [list(nb[best_index([t for *_, t in nb])][0]) for nb in ranked]
