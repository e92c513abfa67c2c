"""Attention rescoring at one exit of an early-exit AED (WeNet's decoding mode for devices): the
exit's CTC N-best from the compiled beam (exits/ctc_nbest.py), then the same exit's decoder scores
all N hypotheses teacher-forced in one batched pass, and the best of

    score = ctc_weight * log p_ctc(y) + (1 - ctc_weight) * log p_att(y <eos>) + length_bonus * |y|

is the answer (exits/rescore_rule.py); with a word LM the N-best is the LM beam's and its score
CTC + LM (decode/lm_beam.py). Unlike the joint beam (decode/joint_beam.py) there is no
autoregressive loop: the decoder runs once per exit and batch, so its cost no longer dominates
the exit's. A search of the exit engine (exits/engine.py): it runs only for the rows that stop.

`skip`: (score name, threshold): keep the CTC greedy hypothesis, without the beam and the
decoder, for utterances whose confidence score (exits/scores.py, e.g. `seq_posterior`)
reaches the threshold (speculative rescoring).
"""

import numpy as np
import torch

from ee_asr.common.errors import UserError
from ee_asr.exits.ctc_greedy import greedy_ids
from ee_asr.exits.ctc_nbest import CtcNbest
from ee_asr.exits.rescore_rule import best_index, check_weights, ranked
from ee_asr.exits.scores import ExitScorer


class LMNbest:
    """The CtcNbest interface over the word LM beam's N-best."""

    def __init__(self, lm_search, nbest_size):
        self.lm_search, self.nbest_size = lm_search, nbest_size

    def nbest_batch(self, log_probs, lengths, rows=None):
        return self.lm_search.nbest_lists(log_probs, lengths, self.nbest_size, rows)


def speculative_rows(view, rows, skip):
    """The rows (of `rows`) whose confidence score `skip` = (name, threshold) lets the greedy CTC
    hypothesis stand, with those hypotheses: ({row: ids}, the other rows)."""
    name, threshold = skip
    layer = view.backend.exit_layers[view.exit_index]
    scores, _ = ExitScorer().score(view.log_probs[rows], view.lengths[rows], {name}, layer)
    sure = [r for r, s in zip(rows, scores) if s[name] >= threshold]
    greedy = dict(zip(sure, greedy_ids(view.log_probs[sure], view.lengths[sure]))) if sure else {}
    return greedy, [r for r in rows if r not in greedy]


class AttentionRescoring:
    """The CTC N-best of an exit rescored by that exit's decoder."""

    nbest = None  # the nbest policy keeps the CTC output's N-best posterior

    def __init__(self, model, nbest_size=10, ctc_weight=0.5, length_bonus=0.0, token_beam=5, skip=None, lm_search=None):
        """`lm_search`: an LMBeamSearch (decode/lm_beam.py): its N-best of LM words, scored by CTC
        and the LM, is rescored instead of the plain CTC N-best; `skip`: see the module's doc."""
        if not hasattr(model, "hypothesis_log_probs"):
            raise UserError("attention rescoring needs a model with decoders (model: aed_ee)")
        try:
            check_weights(nbest_size, ctc_weight)
        except ValueError as e:
            raise UserError(str(e)) from None
        self.model, self.ctc_weight, self.length_bonus = model, ctc_weight, length_bonus
        self.source = CtcNbest(nbest_size, token_beam) if lm_search is None else LMNbest(lm_search, nbest_size)
        self.skip = skip

    def rescore(self, exit_index, hidden, lengths, log_probs, rows=None, log_prob_lengths=None):
        """hidden (B, T, D) and lengths (B,) tensors of one exit, its CTC log_probs (B, T, V) numpy ->
        per utterance (of `rows`, default all) [(token tuple, ctc, att, score), ...] in the beam's order.
        `log_prob_lengths`: the log-probs' own lengths where they differ from the hidden states'
        (blank frames dropped from these: exits/blank_skip.py)."""
        rows = list(range(hidden.size(0))) if rows is None else list(rows)
        nbests = self.source.nbest_batch(log_probs, lengths.cpu().numpy() if log_prob_lengths is None
                                         else log_prob_lengths, rows)
        hyps = [h for nb in nbests for h, _ in nb]
        hyp_utt = torch.tensor([r for r, nb in zip(rows, nbests) for _ in nb], dtype=torch.long,
                               device=hidden.device)
        ys, ys_lens = self.model.hypothesis_ys(hyps)
        att = self.model.hypothesis_log_probs(exit_index, hidden, lengths, hyp_utt, ys, ys_lens).tolist()
        return ranked(nbests, att, self.ctc_weight, self.length_bonus)

    def hypotheses(self, view, rows, greedy=None):
        """The rescored best token-id list of each row of `rows` (the engine's search interface)."""
        rows = np.asarray(rows, dtype=np.int64)
        kept, rest = speculative_rows(view, rows, self.skip) if self.skip else ({}, list(rows))
        hidden, lengths = view.backend.hidden(view.state)
        ranked = dict(zip(rest, self.rescore(view.exit_index, hidden, lengths, view.log_probs, rest,
                                             view.lengths))) if rest else {}
        return [kept[r] if r in kept else list(ranked[r][best_index([t for *_, t in ranked[r]])][0])
                for r in rows.tolist()]
