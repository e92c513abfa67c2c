"""Early-exit decoding that stops computing: the encoder runs block by block, the policy
decides after every exit, and utterances that have exited leave the batch, so layers above an
utterance's chosen exit are never computed for it."""

import time

import torch

from ee_asr.decode.exit_search import ExitSearch
from ee_asr.exits.policies import check_policy, last_exit, policy_scores, stops_at


@torch.no_grad()
def decode_dynamic(model, feats, feat_lens, policy, threshold, nbest_size=10, search=None, max_layers=None):
    """Return one dict per utterance (input order): exit, layers_computed, token ids, the scores
    at every exit it passed, and seconds from the batch start to its exit. `search` (an
    ExitSearch) picks greedy CTC, joint beam search or the word LM beam (decode/lm_beam.py); by
    default greedy CTC with an N-best of `nbest_size`. Hypotheses that the scores did not need
    are searched for only where utterances stop (`search.hypotheses`). `max_layers`: a layer
    budget, no utterance goes past the deepest exit within it."""
    check_policy(policy)
    search = search or ExitSearch(model, nbest_size=nbest_size)
    fields = policy_scores(policy)
    start = time.perf_counter()
    encoder = model.encoder
    x, xl = model.prepare(feats, feat_lens)
    state = encoder.start(x, xl)
    active = torch.arange(feats.size(0))
    results = [{"scores": {}} for _ in range(feats.size(0))]
    last = last_exit(encoder.exit_layers, policy, threshold, max_layers)
    below = None  # the active utterances' greedy hypotheses at the exit below
    for i, layer in enumerate(encoder.exit_layers):
        state = encoder.advance(state, layer)
        hidden, lengths = encoder.exit_output(state), state.lengths
        # the last exit answers anyway: no N-best beam there
        with_nbest = "nbest_posterior" in fields and layer < last
        logp, scores, all_ids, greedy = search.score(i, hidden, lengths, with_nbest, below, "p_as_good" in fields,
                                                     fields, threshold if policy == "nbest" else None)
        stop = [stops_at(policy, threshold, layer, s, last) for s in scores]
        if all_ids is not None:
            hyps = [ids for ids, s in zip(all_ids, stop) if s]
        else:
            hyps = search.hypotheses(i, hidden[stop], lengths[stop], logp[stop]) if any(stop) else []
        now = time.perf_counter() - start
        k = 0
        for row, (utt_index, s) in enumerate(zip(active.tolist(), scores)):
            results[utt_index]["scores"][layer] = s
            if stop[row]:
                results[utt_index].update(exit=layer, layers_computed=layer, ids=hyps[k], seconds=now)
                k += 1
        keep = torch.tensor([not s for s in stop])
        if not keep.any():
            break
        active = active[keep]
        below = None if greedy is None else [g for g, s in zip(greedy, stop) if not s]
        state = state.select(keep.nonzero().squeeze(1).to(lengths.device))
    return results
