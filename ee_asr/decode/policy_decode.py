"""Decode a data split with one exit-selection policy at one threshold, stopping computation early.

Writes `<out>/results.jsonl` (per utterance: `utt, exit, layers_computed, hyp, ref, ref_words,
errors, seconds, scores`) and `<out>/summary.json` (`policy, threshold, wer, mean_exit,
compute_ratio, seconds`).
"""

import json
import time
from pathlib import Path

from tqdm import tqdm

from ee_asr.common.atomic import atomic_open, atomic_write_text
from ee_asr.common.edit_ops import word_counts
from ee_asr.data.batching import make_batches
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.dynamic import decode_dynamic


def decode_with_policy(model, config, data_dir, out_dir, policy, threshold, batch_bins=40000, beam=10,
                       device="cpu", search=None):
    tokenizer = Tokenizer(config["bpemodel"])
    dataset = FeatureDataset(data_dir)
    batches = make_batches(dataset.lengths, batch_bins)
    records, start = [], time.perf_counter()
    for utts in tqdm(batches, desc=f"{policy} {threshold}", unit="batch", mininterval=5, leave=False):
        _, x, xl, _, _ = dataset.collate(utts)
        for utt, res in zip(utts, decode_dynamic(model, x.to(device), xl.to(device), policy, threshold, beam,
                                                     search)):
            hyp, ref = tokenizer.decode(res["ids"]), dataset.text[utt]
            w = word_counts(ref, hyp)
            records.append({"utt": utt, "exit": res["exit"], "layers_computed": res["layers_computed"],
                            "hyp": hyp, "ref": ref, "ref_words": len(ref.split()),
                            "errors": w["sub"] + w["del"] + w["ins"], "seconds": round(res["seconds"], 6),
                            "scores": {str(k): v for k, v in res["scores"].items()}})
    seconds = time.perf_counter() - start
    last = model.encoder.exit_layers[-1]
    mean_exit = sum(r["exit"] for r in records) / len(records)
    summary = {"policy": policy, "threshold": threshold,
               "wer": 100.0 * sum(r["errors"] for r in records) / max(sum(r["ref_words"] for r in records), 1),
               "mean_exit": mean_exit, "compute_ratio": mean_exit / last, "seconds": seconds,
               "utterances": len(records)}
    out_dir = Path(out_dir)
    with atomic_open(out_dir / "results.jsonl") as f:
        for r in sorted(records, key=lambda r: r["utt"]):
            f.write(json.dumps(r) + "\n")
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    return summary, records
