"""Validation: per-exit CTC loss and greedy character error rate (`loss_exit{L}`, `cer_exit{L}`).
The CER is the one RESULTS.md reports (common/edit_ops.py), so `best_criterion: cer` ranks epochs
on the published measure."""

import torch

from ee_asr.common.edit_ops import char_counts, error_rate, errors_of
from ee_asr.exits.ctc_greedy import greedy_ids


@torch.no_grad()
def validate(model, dataset, batches, tokenizer, device):
    model.eval()
    sums, n_utts, char_err, char_ref = {}, 0, {}, {}
    for utts in batches:
        _, x, xl, y, yl = dataset.collate(utts)
        x, xl, y, yl = x.to(device), xl.to(device), y.to(device), yl.to(device)
        _, stats = model(x, xl, y, yl)
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(utts)
        n_utts += len(utts)
        exits, olens = model.exit_log_probs(x, xl)
        refs = [dataset.text[u] for u in utts]
        for layer, logp in exits:
            for ref, ids in zip(refs, greedy_ids(logp.float().cpu().numpy(), olens.cpu().numpy())):
                hyp = tokenizer.decode(ids)
                char_err[layer] = char_err.get(layer, 0) + errors_of(char_counts(ref, hyp))
                char_ref[layer] = char_ref.get(layer, 0) + len(" ".join(ref.split()))
    out = {k: v / max(n_utts, 1) for k, v in sums.items()}
    for layer in char_err:
        out[f"cer_exit{layer}"] = error_rate(char_err[layer], char_ref[layer])
    model.train()
    return out
