"""Early-exit decoding that stops computing: the encoder runs block by block, the policy
decides after every exit, and utterances that have exited leave the batch, so layers above an
utterance's chosen exit are never computed for it."""

import time

import torch

from ee_asr.exits.policies import check_policy, needs_nbest, stops_at
from ee_asr.exits.scoring import exit_scores
from ee_asr.models.ctc_greedy import greedy_ids


@torch.no_grad()
def decode_dynamic(model, feats, feat_lens, policy, threshold, beam=10):
    """Return one dict per utterance (input order): exit, layers_computed, token ids, the scores
    at every exit it passed, and seconds from the batch start to its exit."""
    check_policy(policy)
    start = time.perf_counter()
    encoder = model.encoder
    x, xl = model.prepare(feats, feat_lens)
    state = encoder.start(x, xl)
    active = torch.arange(feats.size(0))
    results = [{"scores": {}} for _ in range(feats.size(0))]
    last = encoder.exit_layers[-1]
    for i, layer in enumerate(encoder.exit_layers):
        state = encoder.advance(state, layer)
        logp = model.head(i).log_softmax(encoder.exit_output(state))
        lengths = state.lengths
        scores = exit_scores(logp, lengths, needs_nbest(policy), beam)
        stop = [stops_at(policy, threshold, layer, s, last) for s in scores]
        hyps = greedy_ids(logp[stop], lengths[stop]) if any(stop) else []
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
