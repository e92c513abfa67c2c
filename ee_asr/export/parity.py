"""fp32 parity of the exported graphs with PyTorch on real data: padded batches of a dump dir
through both, per exit the largest |log-prob difference| over valid frames and the share of
utterances whose greedy ids are identical."""

import logging

import numpy as np
import torch

from ee_asr.deploy.onnx_backend import pad
from ee_asr.exits.ctc_greedy import greedy_ids


def parity_on_data(model, rt, utts, batch_size=16):
    """utts: [(key, feats, text)] -> [{exit, max_abs_diff, same_greedy_share, utterances}] per exit."""
    worst = {e: 0.0 for e in rt.exit_layers}
    same = {e: 0 for e in rt.exit_layers}
    for b in range(0, len(utts), batch_size):
        batch = pad([f for _, f, _ in utts[b:b + batch_size]])
        ref, olens = model.exit_log_probs(torch.from_numpy(batch["feats"]), torch.from_numpy(batch["feats_lens"]))
        ref_ids = {layer: greedy_ids(logp.numpy(), olens.numpy()) for layer, logp in ref}
        carry = batch
        for i, (layer, logp) in enumerate(ref):
            carry = rt.advance(carry, i)
            out, lengths = rt.log_probs(carry, i)
            ours = greedy_ids(out, lengths)
            for row, n in enumerate(olens.tolist()):
                worst[layer] = max(worst[layer], float(np.abs(out[row, :n] - logp[row, :n].numpy()).max()))
            same[layer] += sum(a == r for a, r in zip(ours, ref_ids[layer]))
    logging.info("fp32 parity on %d utterances: %s", len(utts),
                 ", ".join(f"exit {e}: {worst[e]:.1e}, {same[e]}/{len(utts)} same" for e in rt.exit_layers))
    return [{"exit": e, "max_abs_diff": worst[e], "same_greedy_share": round(same[e] / max(len(utts), 1), 4),
             "utterances": len(utts)} for e in rt.exit_layers]
