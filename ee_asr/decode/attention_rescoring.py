"""Attention rescoring at one exit of an early-exit AED (WeNet's decoding mode for devices): the
exit's CTC N-best from the compiled beam (exits/ctc_nbest.py), then the same exit's decoder scores
all N hypotheses teacher-forced in one batched pass, and the best of

    score = ctc_weight * log p_ctc(y) + (1 - ctc_weight) * log p_att(y <eos>) + length_bonus * |y|

is the answer (exits/rescore_rule.py); with a word LM the N-best is the LM beam's and its score
CTC + LM (decode/lm_beam.py). Unlike the joint beam (decode/joint_beam.py) there is no autoregressive loop: the
decoder runs once per exit and batch, so its cost no longer dominates the exit's.

`skip`: (score name, threshold): keep the CTC greedy hypothesis, without the beam and the
decoder, for utterances whose confidence score (exits/exit_scores.py, e.g. `seq_posterior`)
reaches the threshold (speculative rescoring).
"""

import torch

from ee_asr.common.errors import UserError
from ee_asr.exits.ctc_nbest import CtcNbest
from ee_asr.exits.rescore_rule import best_index, check_weights, combine
from ee_asr.models.ctc_greedy import greedy_ids


class LMNbest:
    """The CtcNbest interface over the word LM beam's N-best."""

    def __init__(self, lm_search, nbest_size):
        self.lm_search, self.nbest_size = lm_search, nbest_size

    def nbest_batch(self, log_probs, lengths, rows=None):
        return self.lm_search.nbest_lists(log_probs, lengths, self.nbest_size, rows)


class AttentionRescoring:
    """The CTC N-best of an exit rescored by that exit's decoder."""

    def __init__(self, model, nbest_size=10, ctc_weight=0.5, length_bonus=0.0, token_beam=5, skip=None, lm_search=None):
        """`lm_search`: an LMBeamSearch (decode/lm_beam.py): its N-best of LM words, scored by CTC
        and the LM, is rescored instead of the plain CTC N-best."""
        if not hasattr(model, "hypothesis_log_probs"):
            raise UserError("attention rescoring needs a model with decoders (model: aed_ee)")
        try:
            check_weights(nbest_size, ctc_weight)
        except ValueError as e:
            raise UserError(str(e)) from None
        self.model, self.ctc_weight, self.length_bonus = model, ctc_weight, length_bonus
        self.nbest = CtcNbest(nbest_size, token_beam) if lm_search is None else LMNbest(lm_search, nbest_size)
        self.skip = skip

    def rescore(self, exit_index, hidden, lengths, log_probs, rows=None):
        """Per utterance (of `rows`, default all): [(token tuple, ctc, att, score), ...] in the CTC
        beam's order."""
        rows = list(range(hidden.size(0))) if rows is None else list(rows)
        nbests = self.nbest.nbest_batch(log_probs, lengths, rows)
        hyps = [h for nb in nbests for h, _ in nb]
        hyp_utt = torch.tensor([r for r, nb in zip(rows, nbests) for _ in nb], dtype=torch.long,
                               device=hidden.device)
        ys, ys_lens = self.model.hypothesis_ys(hyps)
        att = self.model.hypothesis_log_probs(exit_index, hidden, lengths, hyp_utt, ys, ys_lens).tolist()
        out, k = [], 0
        for nb in nbests:
            a = att[k:k + len(nb)]
            k += len(nb)
            total = combine([s for _, s in nb], a, [len(h) for h, _ in nb], self.ctc_weight, self.length_bonus)
            out.append([(h, c, ai, t) for (h, c), ai, t in zip(nb, a, total)])
        return out

    def hypotheses(self, exit_index, hidden, lengths, log_probs, scores=None):
        """hidden (B, T, D) of one exit, its CTC log_probs -> the rescored best token-id list per
        utterance. `scores`: the utterances' confidence score dicts, needed with `skip`."""
        rows = list(range(hidden.size(0)))
        greedy = {}
        if self.skip is not None:
            name, threshold = self.skip
            if scores is None or any(name not in s for s in scores):
                raise ValueError(f"speculative rescoring needs the {name} score of every utterance")
            sure = [r for r in rows if scores[r][name] >= threshold]
            if sure:
                greedy = dict(zip(sure, greedy_ids(log_probs[sure], lengths[sure])))
            rows = [r for r in rows if r not in greedy]
        ranked = dict(zip(rows, self.rescore(exit_index, hidden, lengths, log_probs, rows))) if rows else {}
        out = []
        for r in range(hidden.size(0)):
            if r in greedy:
                out.append(greedy[r])
            else:
                nb = ranked[r]
                out.append(list(nb[best_index([t for *_, t in nb])][0]))
        return out


class RescoringExitSearch:
    """The ExitSearch interface (decode/exit_search.py) with rescored hypotheses. The confidence
    scores, the N-best posterior included, are those of the CTC output (`ctc`, a greedy
    ExitSearch, computes them); the rescoring runs only where hypotheses are read."""

    def __init__(self, ctc, rescoring):
        self.ctc, self.rescoring = ctc, rescoring
        self.classifier = ctc.classifier
        self._scores = None

    def score(self, exit_index, hidden, lengths, with_nbest=False, below=None, with_classifier=False, fields=None,
              nbest_threshold=None):
        if self.rescoring.skip is not None and fields is not None:
            fields = set(fields) | {self.rescoring.skip[0]}
        logp, scores, _, greedy = self.ctc.score(exit_index, hidden, lengths, with_nbest, below, with_classifier,
                                                 fields, nbest_threshold)
        self._scores = (hidden, scores)
        return logp, scores, None, greedy

    def hypotheses(self, exit_index, hidden, lengths, logp):
        scores = None
        if self.rescoring.skip is not None:
            scores = self._utterance_scores(exit_index, hidden, lengths, logp)
        return self.rescoring.hypotheses(exit_index, hidden, lengths, logp, scores)

    def _utterance_scores(self, exit_index, hidden, lengths, logp):
        # the scores `score` just computed, when these are the same rows; else (a subset: the
        # utterances that stop) computed again for them
        if self._scores is not None and self._scores[0] is hidden:
            return self._scores[1]
        name = self.rescoring.skip[0]
        return self.ctc.score(exit_index, hidden, lengths, fields={name})[1]


class RescoringSearch:
    """Attention rescoring as a search of the exit engine on main (exits/engine.py): the engine
    calls `hypotheses(view, rows, greedy)` for the rows that stop; `view.backend.hidden(view.state)`
    gives the exit's normalised hidden states and lengths, `view.log_probs` (numpy) its CTC
    log-probs. `nbest = None`: the nbest policy keeps the CTC N-best posterior. The speculative
    skip needs the engine's scores, which a search is not handed: not supported here yet."""

    nbest = None

    def __init__(self, rescoring):
        if rescoring.skip is not None:
            raise UserError("--rescore-skip is not supported by the exit engine's rescoring search yet")
        self.rescoring = rescoring

    def hypotheses(self, view, rows, greedy=None):
        hidden, lengths = view.backend.hidden(view.state)
        index = torch.as_tensor(rows, dtype=torch.long, device=hidden.device)
        log_probs = torch.as_tensor(view.log_probs[rows])
        return self.rescoring.hypotheses(view.exit_index, hidden[index], lengths[index], log_probs)
