"""Decode a data split at every exit with greedy CTC, one encoder pass per batch for all exits.

Writes `<out>/exit{L}/text` (hypotheses) and `<out>/exits.jsonl`: one line per utterance and
exit with `utt, exit, hyp, ref, ref_words, errors` (and sub/del/ins), their character
counterparts, the exit's scores (exits/exit_scores.py: `entropy, maxprob, seq_posterior, blank_share,
disagreement[, nbest_posterior, p_as_good]`) and `frames`, which scoring and the exit-selection sweeps read.
"""

import json
import logging
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ee_asr.common.atomic import atomic_open
from ee_asr.common.edit_ops import char_counts, word_counts
from ee_asr.data.batching import make_batches
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.exit_search import ExitSearch


def utterance_record(utt, layer, hyp, ref, scores, frames):
    w, c = word_counts(ref, hyp), char_counts(ref, hyp)
    return {"utt": utt, "exit": layer, "hyp": hyp, "ref": ref,
            "ref_words": len(ref.split()), "errors": w["sub"] + w["del"] + w["ins"],
            "sub": w["sub"], "del": w["del"], "ins": w["ins"],
            "ref_chars": len(" ".join(ref.split())), "char_errors": c["sub"] + c["del"] + c["ins"],
            "char_sub": c["sub"], "char_del": c["del"], "char_ins": c["ins"],
            **{k: float(f"{v:.6g}") for k, v in scores.items()}, "frames": frames}


@torch.no_grad()
def decode_all_exits(model, config, data_dir, out_dir, batch_bins=40000, device="cpu", nbest_beam=0, search=None):
    """`nbest_beam` > 0 adds the N-best posterior (of a CTC prefix beam of that width, or of the
    joint beam when `search` does joint CTC/attention beam search)."""
    search = search or ExitSearch(model, nbest_beam)
    out_dir = Path(out_dir)
    tokenizer = Tokenizer(config["bpemodel"])
    dataset = FeatureDataset(data_dir)
    batches = make_batches(dataset.lengths, batch_bins)
    records, start = [], time.time()
    for utts in tqdm(batches, desc=f"decode {Path(data_dir).name}", unit="batch", mininterval=5):
        _, x, xl, _, _ = dataset.collate(utts)
        exits, olens = model.exit_hidden(x.to(device), xl.to(device))
        below = None
        for k, (layer, hidden) in enumerate(exits):
            logp, scores, ids_all, below = search.score(k, hidden, olens, nbest_beam > 0, below,
                                                        search.classifier is not None)
            if ids_all is None:
                ids_all = search.hypotheses(k, hidden, olens, logp)
            for i, ids in enumerate(ids_all):
                records.append(utterance_record(utts[i], layer, tokenizer.decode(ids), dataset.text[utts[i]],
                                                scores[i], int(olens[i])))
    elapsed = time.time() - start
    logging.info("decoded %d utterances at %d exits in %.1fs (%.1f utt/s)", len(dataset),
                 len(model.exit_layers), elapsed, len(dataset) / max(elapsed, 1e-9))
    records.sort(key=lambda r: (r["exit"], r["utt"]))
    for layer in model.exit_layers:
        with atomic_open(out_dir / f"exit{layer}" / "text") as f:
            for r in records:
                if r["exit"] == layer:
                    f.write(f"{r['utt']} {r['hyp']}\n")
    with atomic_open(out_dir / "exits.jsonl") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return records
