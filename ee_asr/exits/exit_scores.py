"""All scores of one exit for a batch, from its CTC log-posteriors and greedy hypotheses.

Always (cheap: a few reductions and one batched CTC forward): `entropy`, `maxprob`,
`seq_posterior` (p(greedy hypothesis | x), exits/seq_posterior.py), `blank_share`,
`disagreement` with the exit below (exits/agreement.py) and `frames`. On request the N-best
posterior (`nbest_posterior`, exits/ctc_nbest.py) and the exit classifier's `p_as_good`
(exits/exit_classifier.py), which reads the others.
"""

from ee_asr.exits.agreement import disagreement
from ee_asr.exits.confidence import entropy_score, maxprob_score
from ee_asr.exits.seq_posterior import blank_share, sequence_posterior


def exit_scores(log_probs, lengths, hyps, below=None, nbest=None, classifier=None, layer=None):
    """log_probs (B, T, V), lengths (B,), hyps: B greedy token-id lists, below: the exit below's
    hypotheses (None at the first exit), nbest: a CtcNbest for the N-best posterior, classifier:
    an ExitClassifier (needs `layer`) -> list of B dicts of float scores."""
    columns = {"entropy": entropy_score(log_probs, lengths).tolist(),
               "maxprob": maxprob_score(log_probs, lengths).tolist(),
               "seq_posterior": sequence_posterior(log_probs, lengths, hyps).tolist(),
               "blank_share": blank_share(log_probs, lengths).tolist(),
               "disagreement": [disagreement(h, None if below is None else b)
                                for h, b in zip(hyps, below or [None] * len(hyps))],
               "frames": [float(n) for n in lengths.tolist()]}
    if nbest is not None:
        columns["nbest_posterior"] = nbest.posteriors(log_probs, lengths)
    out = [dict(zip(columns, values)) for values in zip(*columns.values())]
    if classifier is not None:
        for s in out:
            s["p_as_good"] = classifier.predict_one(s, layer)
    return out
