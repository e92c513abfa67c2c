"""All scores of one exit for a batch, from its CTC log-posteriors and greedy hypotheses.

Every exit can have (cheap: a few reductions and one batched CTC forward): `entropy`,
`maxprob`, `seq_posterior` (p(greedy hypothesis | x), exits/seq_posterior.py), `blank_share`,
`disagreement` with the exit below (exits/agreement.py) and `frames`; on request the N-best
posterior (`nbest_posterior`, exits/ctc_nbest.py) and the exit classifier's `p_as_good`
(exits/exit_classifier.py), which reads the others. Decoding at every exit records them all;
online decoding computes only what its policy reads, so a policy pays only for its own score.
"""

from ee_asr.exits.agreement import disagreement
from ee_asr.exits.confidence import _masked_mean, entropy_score, maxprob_score
from ee_asr.exits.exit_classifier import FEATURE_SCORES
from ee_asr.exits.seq_posterior import BLANK, blank_share, sequence_posterior

BASIC = ("entropy", "maxprob", "seq_posterior", "blank_share", "disagreement", "frames")
NEEDS_HYPOTHESES = {"seq_posterior", "disagreement", "p_as_good"}


def needed_scores(fields):
    """The basic scores to compute for these requested fields (p_as_good reads its features)."""
    fields = set(fields)
    if "p_as_good" in fields:
        fields |= set(FEATURE_SCORES)
    return fields


def exit_scores(log_probs, lengths, hyps, below=None, nbest=None, classifier=None, layer=None, fields=None, top=None):
    """log_probs (B, T, V), lengths (B,), hyps: B greedy token-id lists (may be None when no
    requested field needs them), below: the exit below's hypotheses (None at the first exit),
    nbest: a CtcNbest for the N-best posterior, classifier: an ExitClassifier (needs `layer`),
    fields: the basic scores to compute (None: all), top: log_probs.max(-1) when the caller has it
    (the greedy search does), which maxprob and blank_share then reuse -> list of B dicts of float scores."""
    want = set(BASIC) if fields is None else needed_scores(fields)
    make = {"entropy": lambda: entropy_score(log_probs, lengths).tolist(),
            "maxprob": lambda: (maxprob_score(log_probs, lengths) if top is None
                                else _masked_mean(top.values.exp(), lengths)).tolist(),
            "seq_posterior": lambda: sequence_posterior(log_probs, lengths, hyps).tolist(),
            "blank_share": lambda: (blank_share(log_probs, lengths) if top is None
                                    else _masked_mean((top.indices == BLANK).float(), lengths)).tolist(),
            "disagreement": lambda: [disagreement(h, None if below is None else b)
                                     for h, b in zip(hyps, below or [None] * len(hyps))],
            "frames": lambda: [float(n) for n in lengths.tolist()]}
    columns = {k: f() for k, f in make.items() if k in want}
    if nbest is not None:
        columns["nbest_posterior"] = nbest.posteriors(log_probs, lengths)
    out = [dict(zip(columns, values)) for values in zip(*columns.values())] or [{} for _ in range(len(lengths))]
    if classifier is not None and out:
        for s, p in zip(out, classifier.predict_many(out, layer)):
            s["p_as_good"] = p
    return out
