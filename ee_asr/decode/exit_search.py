"""How one exit turns its hidden states into hypotheses and confidence scores: greedy CTC, or
joint CTC/attention beam search for models with decoders (whose N-best then gives the N-best
posterior). Full decoding, dynamic decoding and benchmarks all go through this."""

from ee_asr.decode.joint_beam import JointBeamSearch
from ee_asr.exits.ctc_nbest import CtcNbest
from ee_asr.exits.exit_scores import NEEDS_HYPOTHESES, exit_scores, needed_scores
from ee_asr.exits.nbest_bounds import BoundedNbest
from ee_asr.models.ctc_greedy import greedy_from_best, greedy_ids


class ExitSearch:
    def __init__(self, model, nbest_size=10, beam_size=0, ctc_weight=0.3, penalty=0.0, maxlenratio=0.0,
                 token_beam=5, classifier=None, pre_beam_ratio=1.5, nbest_bounds=True):
        """`nbest_size` (K): hypotheses behind the N-best posterior, from flashlight-text's compiled
        CTC beam search with `token_beam` tokens per frame (greedy mode); `beam_size` > 0: joint
        CTC/attention beam search of that width (AED models), whose beam gives the N-best.
        `classifier`: an ExitClassifier for the `learned` policy; `pre_beam_ratio`: see JointBeamSearch.
        `nbest_bounds`: online nbest decisions run the K-best beam only where cheaper bounds leave
        them open (exits/nbest_bounds.py; the same decisions); False: at every exit, as the paper."""
        self.model, self.nbest_size, self.token_beam, self.classifier = model, nbest_size, token_beam, classifier
        self.joint = (JointBeamSearch(model, beam_size, ctc_weight, penalty, maxlenratio, pre_beam_ratio=pre_beam_ratio)
                      if beam_size > 0 else None)
        self.nbest_bounds = nbest_bounds
        self._nbest = self._bounded = None

    def nbest(self):
        if self._nbest is None:  # built on first use: the decoder is only needed by the nbest policy
            self._nbest = CtcNbest(max(self.nbest_size, 1), self.token_beam)
        return self._nbest

    def bounded_nbest(self):
        if self._bounded is None:
            self._bounded = BoundedNbest(max(self.nbest_size, 1), self.token_beam, self.nbest())
        return self._bounded

    def score(self, exit_index, hidden, lengths, with_nbest=False, below=None, with_classifier=False, fields=None,
              nbest_threshold=None):
        """Return (log_probs, per-utterance score dicts, token ids or None, greedy token ids or None).

        `below`: the exit below's greedy ids, for the agreement score; `fields`: the basic scores
        to compute (None: all); `nbest_threshold`: the online nbest policy's threshold, so that
        the N-best posterior is computed only where bounds do not decide (see __init__). The
        token ids are the hypotheses when already known: in greedy mode whenever the scores
        needed them, in joint mode when the N-best posterior needed the beam anyway."""
        logp = self.model.head(exit_index).log_softmax(hidden)
        bounded = with_nbest and self.joint is None and self.nbest_bounds and nbest_threshold is not None
        if bounded and fields is not None:
            fields = set(fields) | {"seq_posterior"}
        wanted = set() if fields is None else needed_scores(set(fields) | ({"p_as_good"} if with_classifier else set()))
        top = logp.max(-1)  # one pass gives the greedy path, maxprob and the blank share
        greedy = greedy_from_best(top.indices, lengths) if fields is None or wanted & NEEDS_HYPOTHESES else None
        layer = self.model.encoder.exit_layers[exit_index]
        nbest = self.nbest() if with_nbest and self.joint is None and not bounded else None
        if with_classifier and self.classifier is None:
            raise ValueError("the learned policy needs an exit classifier")
        scores = exit_scores(logp, lengths, greedy, below, nbest, self.classifier if with_classifier else None, layer,
                             fields, top)
        if bounded:
            seq = [s["seq_posterior"] for s in scores]
            for s, p in zip(scores, self.bounded_nbest().posteriors(logp, lengths, seq, nbest_threshold)):
                if p is not None:
                    s["nbest_posterior"] = p
        if self.joint is None:
            return logp, scores, greedy, greedy
        if not with_nbest:
            return logp, scores, None, greedy
        ids, posteriors = self.joint(exit_index, hidden, lengths)
        for s, p in zip(scores, posteriors):
            s["nbest_posterior"] = p
        return logp, scores, ids, greedy

    def hypotheses(self, exit_index, hidden, lengths, logp):
        if self.joint is None:
            return greedy_ids(logp, lengths)
        return self.joint(exit_index, hidden, lengths)[0]
