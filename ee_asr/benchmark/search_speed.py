"""What each exit's search costs and gives: per exit and per search (greedy CTC, joint beam,
attention rescoring, ...) decoding everything at that fixed exit, timed and scored. The
measurements are interleaved (every search at every exit, then again) and the minimum of the
repeats is kept, so that the ratios come from one run on a noisy shared machine; with one torch
thread on a CPU the clock is the thread's CPU time (common/timing.work_clock)."""

import logging
import time

from ee_asr.benchmark.policy_speed import bare_encoder
from ee_asr.common.edit_ops import errors_of, word_counts
from ee_asr.common.timing import timed, work_clock
from ee_asr.exits.policies import Policy

ENCODER = "encoder only"  # the bare encoder up to the exit: its time ratios are the ideal ones


def time_searches(model, batches, searches, exits, repeats, decode_text, refs, extra=None):
    """searches: {name: a PyTorch exit engine over `model`}; batches: load_batches' (utts, x, xl, ...) tuples;
    decode_text(ids) -> words; refs: {utt: reference words}. `extra`: {name: fn(x, xl)} timed
    beside them once per repeat (another model's decoding, say; rows with exit None). The bare
    encoder up to each exit is timed too (search ENCODER, no WER).

    Returns (rows, errors): rows [{exit, search, seconds, wer}] (seconds: the fastest repeat),
    errors {(exit, search): {utt: (word errors, reference words)}} for paired comparisons."""
    clock = work_clock(next(model.parameters()).device.type)
    best, errors = {}, {}
    start, done, total = time.time(), 0, repeats * len(exits) * len(searches)
    for r in range(repeats):
        for e in exits:
            enc = sum(timed(lambda: bare_encoder(model, b[1], b[2], e), clock) for b in batches)
            best[(e, ENCODER)] = min(best.get((e, ENCODER), float("inf")), enc)
            for name, engine in searches.items():
                out = {}

                def run(utts, x, xl):
                    out.update(zip(utts, engine.decode((x, xl), Policy("fixed", e))))

                seconds = sum(timed(lambda: run(b[0], b[1], b[2]), clock) for b in batches)
                best[(e, name)] = min(best.get((e, name), float("inf")), seconds)
                if r == 0:
                    errors[(e, name)] = {u: (errors_of(word_counts(refs[u], decode_text(o["ids"]))),
                                             len(refs[u].split())) for u, o in out.items()}
                done += 1
                logging.info("repeat %d, exit %d, %s: %.2fs (%d/%d runs, %.0fs elapsed)", r + 1, e, name, seconds,
                             done, total, time.time() - start)
        for name, fn in (extra or {}).items():
            seconds = sum(timed(lambda: fn(b[1], b[2]), clock) for b in batches)
            best[(None, name)] = min(best.get((None, name), float("inf")), seconds)
    rows = []
    for (e, name), seconds in best.items():
        row = {"exit": e, "search": name, "seconds": seconds}
        if (e, name) in errors:
            errs = errors[(e, name)].values()
            row["wer"] = 100.0 * sum(a for a, _ in errs) / max(sum(w for _, w in errs), 1)
        rows.append(row)
    return rows, errors
