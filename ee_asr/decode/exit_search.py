"""How one exit turns its hidden states into hypotheses and confidence scores: greedy CTC, or
joint CTC/attention beam search for models with decoders (whose N-best then gives the N-best
posterior). Full decoding, dynamic decoding and benchmarks all go through this."""

from ee_asr.decode.joint_beam import JointBeamSearch
from ee_asr.exits.scoring import exit_scores
from ee_asr.models.ctc_greedy import greedy_ids


class ExitSearch:
    def __init__(self, model, nbest_beam=10, beam_size=0, ctc_weight=0.3, penalty=0.0, maxlenratio=0.0):
        """`nbest_beam`: K of the CTC prefix beam behind the N-best posterior (greedy mode);
        `beam_size` > 0: joint CTC/attention beam search of that width (AED models)."""
        self.model, self.nbest_beam = model, nbest_beam
        self.joint = JointBeamSearch(model, beam_size, ctc_weight, penalty, maxlenratio) if beam_size > 0 else None

    def score(self, exit_index, hidden, lengths, with_nbest=False):
        """Return (log_probs, per-utterance score dicts, token ids or None).

        The ids come back only when the scores needed a full search anyway (joint beam + N-best)."""
        logp = self.model.head(exit_index).log_softmax(hidden)
        if self.joint is None:
            return logp, exit_scores(logp, lengths, with_nbest, self.nbest_beam), None
        scores = exit_scores(logp, lengths)
        if not with_nbest:
            return logp, scores, None
        ids, posteriors = self.joint(exit_index, hidden, lengths)
        for s, p in zip(scores, posteriors):
            s["nbest_posterior"] = p
        return logp, scores, ids

    def hypotheses(self, exit_index, hidden, lengths, logp):
        if self.joint is None:
            return greedy_ids(logp, lengths)
        return self.joint(exit_index, hidden, lengths)[0]
