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
from ee_asr.common.edit_ops import error_rate, errors_of, word_counts
from ee_asr.common.lock import DirLock
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.skipping import SkippingDecoder
from ee_asr.decode.split import job_batches
from ee_asr.exits.policies import Policy


class PolicyDecoder:
    """Decodes one data split at many operating points: the tokenizer, the data list and the
    batches are read once, the features once per point (a large test set need not fit in memory)."""

    def __init__(self, engine, config, data_dir, batch_bins=40000, device="cpu", max_layers=None, keep=None):
        """`engine`: the PyTorch exit engine (decode/torch_backend.py); `max_layers`: a layer cap
        for every operating point (see exits/policies.py); `keep`: only these utterances (one job
        of a split decode), batched as in the whole set."""
        self.engine, self.device, self.max_layers = engine, device, max_layers
        self.tokenizer = Tokenizer(config["bpemodel"])
        self.dataset, self.data_dir = FeatureDataset(data_dir), data_dir
        self.batches = job_batches(self.dataset.lengths, batch_bins, keep)

    def decode(self, out_dir, policy, threshold):
        """Decode with `policy` at `threshold`; write and return (summary, per-utterance records).
        `out_dir` is locked meanwhile: a second decoding into it refuses, naming this one."""
        with DirLock(out_dir, f"{policy} decoding of {self.data_dir}"):
            return self._decode(out_dir, policy, threshold)

    def _decode(self, out_dir, policy, threshold):
        dataset, point = self.dataset, Policy(policy, threshold, self.max_layers)

        def decode_batch(utts):
            batch_records = []
            _, x, xl, _, _ = dataset.collate(utts)
            for utt, res in zip(utts, self.engine.decode((x.to(self.device), xl.to(self.device)), point)):
                hyp, ref = self.tokenizer.decode(res["ids"]), dataset.text[utt]
                w = word_counts(ref, hyp)
                batch_records.append({"utt": utt, "exit": res["exit"], "layers_computed": res["layers_computed"],
                                      "hyp": hyp, "ref": ref, "ref_words": len(ref.split()),
                                      "errors": errors_of(w), "seconds": round(res["seconds"], 6),
                                      "scores": {str(k): v for k, v in res["scores"].items()}})
            return batch_records

        records, start = [], time.perf_counter()
        self.skipping = SkippingDecoder(decode_batch, self.data_dir)  # a bad utterance is named and skipped
        for utts in tqdm(self.batches, desc=f"{policy} {threshold}", unit="batch", mininterval=5, leave=False):
            records += self.skipping(utts)
        self.skipping.check_some_decoded(sum(len(b) for b in self.batches))
        return self._write(Path(out_dir), policy, threshold, records, time.perf_counter() - start)

    def _write(self, out_dir, policy, threshold, records, seconds):
        last = self.engine.exit_layers[-1]
        mean_exit = sum(r["exit"] for r in records) / len(records)
        summary = {"policy": policy, "threshold": threshold,
                   "wer": error_rate(sum(r["errors"] for r in records), sum(r["ref_words"] for r in records)),
                   "mean_exit": mean_exit, "compute_ratio": mean_exit / last, "seconds": seconds,
                   "utterances": len(records), "skipped": len(self.skipping.skipped), "max_layers": self.max_layers,
                   "blank_skip": getattr(self.engine.backend, "blank_skip", None)}
        with atomic_open(out_dir / "results.jsonl") as f:
            for r in sorted(records, key=lambda r: r["utt"]):
                f.write(json.dumps(r) + "\n")
        atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
        return summary, records
