"""Decode a split with an exit-selection policy at one or more thresholds, stopping early.

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


class PolicyDecoder:
    """Decodes one data split at many operating points: the tokenizer, the data list and the
    batches are read once, the features once per point (a large test set need not fit in memory)."""

    def __init__(self, model, config, data_dir, batch_bins=40000, nbest_size=10, device="cpu", search=None,
                 max_layers=None):
        """`max_layers`: a layer budget that caps every operating point (see exits/policies.py)."""
        self.model, self.nbest_size, self.device, self.search = model, nbest_size, device, search
        self.max_layers = max_layers
        self.tokenizer = Tokenizer(config["bpemodel"])
        self.dataset = FeatureDataset(data_dir)
        self.batches = make_batches(self.dataset.lengths, batch_bins)

    def decode(self, out_dir, policy, threshold):
        """Decode with `policy` at `threshold`; write and return (summary, per-utterance records)."""
        model, dataset = self.model, self.dataset
        records, start = [], time.perf_counter()
        for utts in tqdm(self.batches, desc=f"{policy} {threshold}", unit="batch", mininterval=5, leave=False):
            _, x, xl, _, _ = dataset.collate(utts)
            for utt, res in zip(utts, decode_dynamic(model, x.to(self.device), xl.to(self.device), policy,
                                                         threshold, self.nbest_size, self.search, self.max_layers)):
                hyp, ref = self.tokenizer.decode(res["ids"]), dataset.text[utt]
                w = word_counts(ref, hyp)
                records.append({"utt": utt, "exit": res["exit"], "layers_computed": res["layers_computed"],
                                "hyp": hyp, "ref": ref, "ref_words": len(ref.split()),
                                "errors": w["sub"] + w["del"] + w["ins"], "seconds": round(res["seconds"], 6),
                                "scores": {str(k): v for k, v in res["scores"].items()}})
        return self._write(Path(out_dir), policy, threshold, records, time.perf_counter() - start)

    def _write(self, out_dir, policy, threshold, records, seconds):
        last = self.model.encoder.exit_layers[-1]
        mean_exit = sum(r["exit"] for r in records) / len(records)
        summary = {"policy": policy, "threshold": threshold,
                   "wer": 100.0 * sum(r["errors"] for r in records) / max(sum(r["ref_words"] for r in records), 1),
                   "mean_exit": mean_exit, "compute_ratio": mean_exit / last, "seconds": seconds,
                   "utterances": len(records), "max_layers": self.max_layers}
        with atomic_open(out_dir / "results.jsonl") as f:
            for r in sorted(records, key=lambda r: r["utt"]):
                f.write(json.dumps(r) + "\n")
        atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
        return summary, records
