"""The exit scores of exits/confidence.py and exits/scoring.py, on numpy arrays (same formulas)."""

import math

import numpy as np

from ee_asr.exits.ctc_prefix_beam import prefix_beam_search
from ee_asr.exits.nbest_posterior import nbest_posterior

BLANK_ID = 0


def _masked_mean(values, lengths):
    mask = np.arange(values.shape[1])[None, :] < lengths[:, None]
    return (values * mask).sum(1) / np.maximum(lengths, 1)


def exit_scores(log_probs, lengths, with_nbest=False, nbest_size=10):
    """log_probs (B, T, V), lengths (B,) -> list of B dicts: entropy, maxprob[, nbest_posterior]."""
    ent = -(np.exp(log_probs) * log_probs).sum(-1) / math.log(log_probs.shape[-1])
    ent = _masked_mean(ent, lengths)
    mp = _masked_mean(np.exp(log_probs.max(-1)), lengths)
    out = [{"entropy": float(e), "maxprob": float(m)} for e, m in zip(ent, mp)]
    if with_nbest:
        for i, n in enumerate(lengths.tolist()):
            out[i]["nbest_posterior"] = nbest_posterior(prefix_beam_search(log_probs[i, :n], beam=nbest_size))
    return out


def greedy_ids(log_probs, length):
    """(T, V) log-probs of one utterance -> token ids, repeats merged, blanks dropped."""
    best = log_probs[:length].argmax(-1)
    keep = np.ones(len(best), bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(t) for t in best[keep] if t != BLANK_ID]
