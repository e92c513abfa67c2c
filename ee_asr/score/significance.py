"""How sure a per-exit WER table is: paired bootstrap over the test utterances.

Exits of one model are scored on the same utterances, so the question "is exit 12 better than
exit 10?" is a paired one: each resample draws utterances with replacement and scores every exit
on the same draw (Koehn 2004; Bisani and Ney 2004). A difference between two adjacent exits
whose interval spans zero is within what another draw of test sentences could reverse.
"""

import numpy as np

from ee_asr.common.errors import UserError


def per_utterance_matrix(records):
    """(exit layers, errors (U, X), reference words (U,)) from exits.jsonl records, utterances sorted."""
    layers = sorted({r["exit"] for r in records})
    by_exit = {layer: {} for layer in layers}
    words = {}
    for r in records:
        by_exit[r["exit"]][r["utt"]] = r["errors"]
        words[r["utt"]] = r["ref_words"]
    utts = sorted(words)
    missing = [(layer, u) for layer in layers for u in utts if u not in by_exit[layer]]
    if missing:
        layer, utt = missing[0]
        raise UserError(f"utterance {utt} has no record at exit {layer} ({len(missing)} missing): "
                        "every exit must be decoded on the same utterances")
    errors = np.array([[by_exit[layer][u] for layer in layers] for u in utts], dtype=np.float64)
    return layers, errors, np.array([words[u] for u in utts], dtype=np.float64)


def bootstrap_count_chunks(n, resamples=1000, seed=0, chunk=100):
    """The paired bootstrap's draws of n utterances, as how often each utterance is drawn (so a
    draw is a weighted sum instead of a copy), `chunk` draws at a time to bound memory on large
    test sets: arrays (<= chunk, n). The same seed gives the same draws however they are chunked."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, chunk):
        yield np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                        for _ in range(min(chunk, resamples - start))]).astype(np.float64)


def bootstrap_counts(n, resamples=1000, seed=0):
    """All draws at once: (resamples, n)."""
    return np.concatenate(list(bootstrap_count_chunks(n, resamples, seed)))


def bootstrap_wers(errors, ref_words, resamples=1000, seed=0):
    """WER % of every exit on `resamples` paired draws of utterances: array (resamples, X)."""
    out = np.empty((resamples, errors.shape[1]))
    start = 0
    for counts in bootstrap_count_chunks(errors.shape[0], resamples, seed):
        out[start:start + len(counts)] = 100.0 * (counts @ errors) / np.maximum(counts @ ref_words, 1)[:, None]
        start += len(counts)
    return out


def exit_significance(records, resamples=1000, seed=0, level=0.95):
    """Per exit: WER, its interval, and the change from the exit below with its interval and
    the share of draws in which this exit is worse than the exit below."""
    layers, errors, words = per_utterance_matrix(records)
    wer = 100.0 * errors.sum(0) / max(words.sum(), 1)
    draws = bootstrap_wers(errors, words, resamples, seed)
    lo, hi = 50.0 * (1 - level), 100.0 - 50.0 * (1 - level)
    rows = []
    for i, layer in enumerate(layers):
        row = {"exit": layer, "wer": wer[i], "interval": tuple(np.percentile(draws[:, i], [lo, hi]))}
        if i > 0:
            change = draws[:, i] - draws[:, i - 1]
            row.update(change=wer[i] - wer[i - 1], change_interval=tuple(np.percentile(change, [lo, hi])),
                       p_worse=float((change > 0).mean()))
        rows.append(row)
    return rows


def significance_table(records, resamples=1000, seed=0):
    rows = exit_significance(records, resamples, seed)
    out = ["|exit|WER|95% interval|change from the exit below|95% interval of the change|draws where worse|",
           "|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["interval"]
        cells = [f"exit{r['exit']}", f"{r['wer']:.2f}", f"{lo:.2f} .. {hi:.2f}"]
        if "change" in r:
            clo, chi = r["change_interval"]
            cells += [f"{r['change']:+.2f}", f"{clo:+.2f} .. {chi:+.2f}", f"{100 * r['p_worse']:.1f}%"]
        else:
            cells += ["-", "-", "-"]
        out.append("|" + "|".join(cells) + "|")
    return "\n".join(out) + "\n"


def significance_section(decode_dir, records, resamples=1000):
    """Markdown for one decode dir of RESULTS.md."""
    return (f"### How sure: {decode_dir.name}\n\nPaired bootstrap, {resamples} draws of the test utterances; "
            "a change whose interval spans 0 could reverse on another test set.\n\n"
            + significance_table(records, resamples))
