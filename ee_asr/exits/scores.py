"""An exit's confidence scores, written once for both backends: numpy in (a CPU torch tensor is
read without a copy), float lists out.

| score            | what                                                            | cost            |
|------------------|-----------------------------------------------------------------|-----------------|
| entropy          | mean frame entropy / log V (0: certain, 1: uniform)             | an exp per cell |
| maxprob          | mean top frame posterior                                        | one argmax      |
| blank_share      | share of frames whose best token is the blank                   | the same argmax |
| seq_posterior    | p(greedy hypothesis | x), one batched CTC forward (ctc_forward) | greedy + forward|
| disagreement     | edit distance to the exit below's hypothesis (agreement.py)     | greedy          |
| frames           | output frames                                                   | -               |
| nbest_posterior  | the paper's N-best share (ctc_nbest.py; bounded: nbest_bounds)  | a K-best beam   |
| p_as_good        | the exit classifier's p(as good as the last exit)               | its features    |

Why numpy for both: measured on 16 x 150 frames x 1,002 tokens, 1 thread, entropy 2.2 ms in
numpy against 4.8 ms in torch, every score together 14.9 against 17.6 ms (the CTC forward is
slower in numpy, 11.9 against 5.4 ms, the rest faster); on a CPU the copy is free. On a GPU the
log-probs of the rows still decoding cross to the host once per exit (not measured here).
"""

import math

import numpy as np

from ee_asr.data.tokenizer import BLANK_ID
from ee_asr.exits.agreement import disagreement
from ee_asr.exits.ctc_forward import sequence_posterior
from ee_asr.exits.ctc_greedy import greedy_from_best
from ee_asr.exits.exit_classifier import FEATURE_SCORES

BASIC = ("entropy", "maxprob", "seq_posterior", "blank_share", "disagreement", "frames")
NEEDS_GREEDY = {"seq_posterior", "disagreement"}


def with_dependencies(fields):
    """The scores to compute for these: p_as_good reads its features."""
    fields = set(fields)
    return fields | set(FEATURE_SCORES) if "p_as_good" in fields else fields


def masked_mean(values, lengths):
    """(B, T) values -> (B,) means over each row's first `lengths` frames."""
    mask = np.arange(values.shape[1])[None, :] < lengths[:, None]
    return (values * mask).sum(1) / np.maximum(lengths, 1)


def entropy(log_probs, lengths):
    ent = -(np.exp(log_probs) * log_probs).sum(-1) / math.log(log_probs.shape[-1])
    return masked_mean(ent, lengths)


class ExitScorer:
    """Computes the scores asked for at one exit; holds what they need across exits: the
    N-best search of K hypotheses (built on first use) and the exit classifier."""

    def __init__(self, nbest_size=10, token_beam=5, classifier=None, nbest_bounds=True):
        """`nbest_size` (K): hypotheses behind the N-best posterior; `token_beam`: tokens tried per
        frame by its beam; `classifier`: an ExitClassifier (the p_as_good score); `nbest_bounds`:
        online, run the K-best beam only where cheaper bounds leave the decision open (same
        decisions; nbest_bounds.py), else at every exit as the paper."""
        self.nbest_size, self.token_beam = nbest_size, token_beam
        self.classifier, self.nbest_bounds = classifier, nbest_bounds
        self._exact = self._bounded = None

    def exact_nbest(self):
        if self._exact is None:
            from ee_asr.exits.ctc_nbest import CtcNbest  # flashlight-text: only the nbest score needs it

            self._exact = CtcNbest(self.nbest_size, self.token_beam)
        return self._exact

    def bounded_nbest(self):
        if self._bounded is None:
            from ee_asr.exits.nbest_bounds import BoundedNbest

            self._bounded = BoundedNbest(self.nbest_size, self.token_beam, self.exact_nbest())
        return self._bounded

    def score(self, log_probs, lengths, fields, layer, below=None, nbest=None, threshold=None):
        """log_probs (B, T, V), lengths (B,), fields: the scores wanted (with_dependencies adds
        what they read), layer: the exit's layer (for the classifier), below: the exit below's
        greedy ids of these rows (None at the first exit), nbest: the N-best posteriors of the
        search's own beam (joint, LM) when it has one, threshold: the nbest policy's, which lets
        the bounds settle rows without the K-best beam (their nbest_posterior is then absent and
        seq_posterior decides; exits/policies.py). -> (B score dicts, B greedy id lists or None)."""
        want = with_dependencies(fields)
        bounded = "nbest_posterior" in want and nbest is None and self.nbest_bounds and threshold is not None
        if bounded:
            want.add("seq_posterior")
        best = log_probs.argmax(-1) if want & (NEEDS_GREEDY | {"maxprob", "blank_share"}) else None
        greedy = greedy_from_best(best, lengths) if want & NEEDS_GREEDY else None
        columns = {}
        if "entropy" in want:
            columns["entropy"] = entropy(log_probs, lengths).tolist()
        if "maxprob" in want:
            top = np.take_along_axis(log_probs, best[..., None], -1)[..., 0]
            columns["maxprob"] = masked_mean(np.exp(top), lengths).tolist()
        if "seq_posterior" in want:
            columns["seq_posterior"] = sequence_posterior(log_probs, lengths, greedy).tolist()
        if "blank_share" in want:
            columns["blank_share"] = masked_mean((best == BLANK_ID).astype(np.float32), lengths).tolist()
        if "disagreement" in want:
            columns["disagreement"] = [disagreement(h, None if below is None else b)
                                       for h, b in zip(greedy, below or [None] * len(greedy))]
        if "frames" in want:
            columns["frames"] = [float(n) for n in lengths.tolist()]
        if "nbest_posterior" in want and not bounded:
            columns["nbest_posterior"] = list(nbest) if nbest is not None else self.exact_nbest().posteriors(
                log_probs, lengths)
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())] or [{} for _ in range(len(lengths))]
        if bounded:
            shares = self.bounded_nbest().posteriors(log_probs, lengths, columns["seq_posterior"], threshold)
            for s, p in zip(rows, shares):
                if p is not None:
                    s["nbest_posterior"] = p
        if "p_as_good" in want and rows:
            if self.classifier is None:
                raise ValueError("the learned policy needs an exit classifier")
            for s, p in zip(rows, self.classifier.predict_many(rows, layer)):
                s["p_as_good"] = p
        return rows, greedy
