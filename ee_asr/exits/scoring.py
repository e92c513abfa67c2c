"""All scores of one exit for a batch: entropy and maxprob always, the N-best posterior on request."""

from ee_asr.exits.confidence import entropy_score, maxprob_score
from ee_asr.exits.ctc_prefix_beam import nbest_posterior, prefix_beam_search


def exit_scores(log_probs, lengths, with_nbest=False, beam=10):
    """log_probs (B, T, V) -> list of B dicts of float scores."""
    ent = entropy_score(log_probs, lengths).tolist()
    mp = maxprob_score(log_probs, lengths).tolist()
    out = [{"entropy": e, "maxprob": m} for e, m in zip(ent, mp)]
    if with_nbest:
        lp = log_probs.detach().cpu().numpy()
        for i, n in enumerate(lengths.tolist()):
            out[i]["nbest_posterior"] = nbest_posterior(prefix_beam_search(lp[i, :n], beam=beam))
    return out
