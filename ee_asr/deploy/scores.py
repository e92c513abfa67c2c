"""The exit scores of exits/exit_scores.py on numpy arrays (same formulas), for the ONNX runtime:
entropy, maxprob, nbest_posterior, seq_posterior (exits/ctc_forward.py), blank_share,
disagreement with the exit below (exits/agreement.py), frames, and the exit classifier's
p_as_good. As on the PyTorch side, only what the policy reads is computed."""

import math

import numpy as np

from ee_asr.exits.agreement import disagreement
from ee_asr.exits.ctc_forward import sequence_posterior
from ee_asr.exits.exit_classifier import FEATURE_SCORES
from ee_asr.exits.nbest_posterior import nbest_posterior

BLANK_ID = 0
NEEDS_HYPOTHESES = {"seq_posterior", "disagreement", "p_as_good"}


def _masked_mean(values, lengths):
    mask = np.arange(values.shape[1])[None, :] < lengths[:, None]
    return (values * mask).sum(1) / np.maximum(lengths, 1)


def needed_scores(fields):
    """The scores to compute for these requested fields (p_as_good reads its features)."""
    fields = set(fields)
    return fields | set(FEATURE_SCORES) if "p_as_good" in fields else fields


def exit_scores(log_probs, lengths, fields, nbest=None, below=None, classifier=None, layer=None):
    """log_probs (B, T, V), lengths (B,), fields: the scores the policy reads; nbest: a callable
    (T, V) log-probs -> N-best list, below: the exit below's greedy ids of these rows (None at the
    first exit), classifier: an ExitClassifier for p_as_good (needs `layer`).
    -> (B score dicts, B greedy id lists or None when no score needed them)."""
    want = needed_scores(fields)
    b = len(lengths)
    best = log_probs.argmax(-1) if want & ({"maxprob", "blank_share"} | NEEDS_HYPOTHESES) else None
    hyps = [_greedy(best[i], n) for i, n in enumerate(lengths.tolist())] if want & NEEDS_HYPOTHESES else None
    columns = {}
    if "entropy" in want:
        ent = -(np.exp(log_probs) * log_probs).sum(-1) / math.log(log_probs.shape[-1])
        columns["entropy"] = _masked_mean(ent, lengths).tolist()
    if "maxprob" in want:
        top = np.take_along_axis(log_probs, best[..., None], -1)[..., 0]
        columns["maxprob"] = _masked_mean(np.exp(top), lengths).tolist()
    if "seq_posterior" in want:
        columns["seq_posterior"] = sequence_posterior(log_probs, lengths, hyps).tolist()
    if "blank_share" in want:
        columns["blank_share"] = _masked_mean((best == BLANK_ID).astype(np.float64), lengths).tolist()
    if "disagreement" in want:
        columns["disagreement"] = [disagreement(h, None if below is None else g)
                                   for h, g in zip(hyps, below or [None] * b)]
    if "frames" in want:
        columns["frames"] = [float(n) for n in lengths.tolist()]
    if "nbest_posterior" in want:
        columns["nbest_posterior"] = [nbest_posterior(nbest(log_probs[i, :n])) for i, n in enumerate(lengths.tolist())]
    out = [dict(zip(columns, values)) for values in zip(*columns.values())] or [{} for _ in range(b)]
    if "p_as_good" in want and out:
        for s, p in zip(out, classifier.predict_many(out, layer)):
            s["p_as_good"] = p
    return out, hyps


def _greedy(best, length):
    best = best[:length]
    keep = np.ones(len(best), bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(t) for t in best[keep] if t != BLANK_ID]


def greedy_ids(log_probs, length):
    """(T, V) log-probs of one utterance -> token ids, repeats merged, blanks dropped."""
    return _greedy(log_probs[:length].argmax(-1), length)
