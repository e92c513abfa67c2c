"""Early-exit decoding that stops computing: the encoder runs block by block, the policy
decides after every exit, and utterances that have exited leave the batch, so layers above an
utterance's chosen exit are never computed for it."""

import time

import torch

from ee_asr.decode.exit_search import ExitSearch
from ee_asr.exits.policies import check_policy, needs_nbest, stops_at


@torch.no_grad()
def decode_dynamic(model, feats, feat_lens, policy, threshold, beam=10, search=None):
    """Return one dict per utterance (input order): exit, layers_computed, token ids, the scores
    at every exit it passed, and seconds from the batch start to its exit. `search` (an
    ExitSearch) picks greedy CTC or joint beam search; by default greedy CTC with an N-best of `beam`."""
    check_policy(policy)
    search = search or ExitSearch(model, nbest_beam=beam)
    start = time.perf_counter()
    encoder = model.encoder
    x, xl = model.prepare(feats, feat_lens)
    state = encoder.start(x, xl)
    active = torch.arange(feats.size(0))
    results = [{"scores": {}} for _ in range(feats.size(0))]
    last = encoder.exit_layers[-1]
    for i, layer in enumerate(encoder.exit_layers):
        state = encoder.advance(state, layer)
        hidden, lengths = encoder.exit_output(state), state.lengths
        logp, scores, all_ids = search.score(i, hidden, lengths, needs_nbest(policy))
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
        state = state.select(keep.nonzero().squeeze(1).to(lengths.device))
    return results
