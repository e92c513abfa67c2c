"""Decode a data split at every exit (the exit engine's decode_every_exit: one encoder pass per
batch for all exits; greedy CTC, joint beam or LM beam as the engine's search).

Writes `<out>/exit{L}/text` (hypotheses) and `<out>/exits.jsonl`: one line per utterance and
exit with `utt, exit, hyp, ref, ref_words, errors` (and sub/del/ins), their character
counterparts, the exit's scores (exits/scores.py: `entropy, maxprob, seq_posterior, blank_share,
disagreement, nbest_posterior[, p_as_good]`) and `frames`, which scoring and the exit-selection sweeps read;
and `<out>/skipped`: the utterances that could not be decoded (too short, unreadable), with why.
"""

import json
import logging
import time
from pathlib import Path

from tqdm import tqdm

from ee_asr.common.atomic import atomic_open
from ee_asr.common.edit_ops import char_counts, errors_of, word_counts
from ee_asr.common.lock import DirLock
from ee_asr.common.skipped import SKIPPED_FILE, write_skipped
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.decode.skipping import SkippingDecoder
from ee_asr.decode.split import job_batches


def utterance_record(utt, layer, hyp, ref, scores, frames):
    w, c = word_counts(ref, hyp), char_counts(ref, hyp)
    return {"utt": utt, "exit": layer, "hyp": hyp, "ref": ref,
            "ref_words": len(ref.split()), "errors": errors_of(w),
            "sub": w["sub"], "del": w["del"], "ins": w["ins"],
            "ref_chars": len(" ".join(ref.split())), "char_errors": errors_of(c),
            "char_sub": c["sub"], "char_del": c["del"], "char_ins": c["ins"],
            **{k: float(f"{v:.6g}") for k, v in scores.items()}, "frames": frames}


def decode_all_exits(engine, config, data_dir, out_dir, batch_bins=40000, device="cpu", keep=None):
    """`engine`: the PyTorch exit engine (decode/torch_backend.py; its scorer's K gives the N-best
    posterior, its search the hypotheses). `keep`: decode only these utterances (one job of a split
    decode), batched as in the whole set. `out_dir` is locked meanwhile: a second decoding into it
    refuses, naming this one."""
    with DirLock(out_dir, f"decoding of {data_dir}"):
        return _decode_all_exits(engine, config, data_dir, out_dir, batch_bins, device, keep)


def _decode_all_exits(engine, config, data_dir, out_dir, batch_bins, device, keep):
    out_dir = Path(out_dir)
    tokenizer = Tokenizer(config["bpemodel"])
    dataset = FeatureDataset(data_dir)
    batches = job_batches(dataset.lengths, batch_bins, keep)

    def decode_batch(utts):
        batch_records = []
        _, x, xl, _, _ = dataset.collate(utts)
        for utt, exits in zip(utts, engine.decode_every_exit((x.to(device), xl.to(device)))):
            for layer, e in exits.items():
                batch_records.append(utterance_record(utt, layer, tokenizer.decode(e["ids"]), dataset.text[utt],
                                                      e["scores"], int(e["scores"]["frames"])))
        return batch_records

    records, start = [], time.time()
    decoder = SkippingDecoder(decode_batch, data_dir)  # a bad utterance is skipped and named, not fatal
    for utts in tqdm(batches, desc=f"decode {Path(data_dir).name}", unit="batch", mininterval=5):
        records += decoder(utts)
    n = sum(len(b) for b in batches)
    decoder.check_some_decoded(n)
    elapsed = time.time() - start
    done = n - len(decoder.skipped)
    logging.info("decoded %d utterances at %d exits in %.1fs (%.1f utt/s)%s", done, len(engine.exit_layers),
                 elapsed, done / max(elapsed, 1e-9), f"; {len(decoder.skipped)} skipped" if decoder.skipped else "")
    records.sort(key=lambda r: (r["exit"], r["utt"]))
    for layer in engine.exit_layers:
        with atomic_open(out_dir / f"exit{layer}" / "text") as f:
            for r in records:
                if r["exit"] == layer:
                    f.write(f"{r['utt']} {r['hyp']}\n")
    with atomic_open(out_dir / "exits.jsonl") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    write_skipped(out_dir / SKIPPED_FILE, decoder.skipped)
    return records
