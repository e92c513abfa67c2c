"""Choosing attention rescoring's N-best size, CTC weight and length bonus on a dev set: one
encoder pass, the CTC N-best and the decoder's scores once per exit and N, then every weight
and bonus of the grid picked from the same scored lists (exits/rescore_rule.py), so the grid
costs little more than one decoding."""

import logging

import torch
from tqdm import tqdm

from ee_asr.common.edit_ops import errors_of, word_counts
from ee_asr.data.batching import make_batches
from ee_asr.decode.attention_rescoring import AttentionRescoring
from ee_asr.exits.rescore_rule import best_index, combine


@torch.no_grad()
def rescoring_grid(model, dataset, decode_text, nbest_sizes, ctc_weights, length_bonuses=(0.0,), batch_bins=40000,
                   token_beam=5):
    """Return rows {exit, nbest, ctc_weight, length_bonus, wer, errors, words}, one per grid point."""
    scorers = {n: AttentionRescoring(model, n, token_beam=token_beam) for n in nbest_sizes}
    errors, words = {}, 0
    batches = make_batches(dataset.lengths, batch_bins)
    for utts in tqdm(batches, desc="rescoring grid", unit="batch", mininterval=5):
        _, x, xl, _, _ = dataset.collate(utts)
        outs, olens = model.exit_hidden(x, xl)
        refs = [dataset.text[u] for u in utts]
        words += sum(len(r.split()) for r in refs)
        for k, (layer, hidden) in enumerate(outs):
            logp = model.head(k).log_softmax(hidden).float().cpu().numpy()
            for n, scorer in scorers.items():
                for ref, ranked in zip(refs, scorer.rescore(k, hidden, olens, logp)):
                    for w in ctc_weights:
                        for b in length_bonuses:
                            total = combine([c for _, c, _, _ in ranked], [a for _, _, a, _ in ranked],
                                            [len(h) for h, *_ in ranked], w, b)
                            hyp = decode_text(list(ranked[best_index(total)][0]))
                            key = (layer, n, w, b)
                            errors[key] = errors.get(key, 0) + errors_of(word_counts(ref, hyp))
    logging.info("rescoring grid: %d points on %d utterances", len(errors), len(dataset.lengths))
    return [{"exit": e, "nbest": n, "ctc_weight": w, "length_bonus": b, "errors": v, "words": words,
             "wer": 100.0 * v / max(words, 1)} for (e, n, w, b), v in sorted(errors.items())]


def best_point(rows):
    """The (nbest, ctc_weight, length_bonus) with the lowest WER summed over the exits (one
    setting for every exit; ties: the smaller N-best, then the first weight)."""
    totals = {}
    for r in rows:
        key = (r["nbest"], r["ctc_weight"], r["length_bonus"])
        totals[key] = totals.get(key, 0) + r["errors"]
    return min(totals, key=lambda k: (totals[k], k[0]))
