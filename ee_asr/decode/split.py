"""Decoding a test set as N jobs whose merged output equals one job's, byte for byte.

A job's share is a set of whole *batches* of the full set (as `make_batches` forms them for one
job), and a job batches its utterances by filtering the full set's batches rather than batching
its share afresh: every utterance is then padded and computed in exactly the batch it would
have had in a single job, so the scores (and their rounding) cannot differ.

The merge checks that every utterance of the set appears exactly once (per exit, per policy
operating point) and names the missing or doubled ones; a lost or repeated job can then never
pass for a complete decode.
"""

import json
from collections import Counter
from pathlib import Path

from ee_asr.common.atomic import atomic_open, atomic_write_text
from ee_asr.common.edit_ops import error_rate
from ee_asr.common.errors import UserError
from ee_asr.common.lines import read_lines
from ee_asr.common.skipped import SKIPPED_FILE, read_skipped
from ee_asr.data.batching import make_batches
from ee_asr.data.datadir import read_dict


def read_utt_list(path, data_dir):
    """The utterance ids in `path` (first field of each line), all of which must be in the dump
    dir `data_dir`; None when `path` is None (the whole set)."""
    if path is None:
        return None
    known = read_dict(Path(data_dir) / "utt2num_frames")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: utterance list does not exist")
    utts = [line.split(maxsplit=1)[0] for _, line in read_lines(path) if line.strip()]
    for i, u in enumerate(utts, 1):
        if u not in known:
            raise UserError(f"{path}:{i}: utterance '{u}' is not in the data dir")
    return set(utts)


def job_batches(lengths, batch_bins, keep=None):
    """The full set's batches, restricted to the utterances in `keep` (all when None)."""
    batches = make_batches(lengths, batch_bins)
    if keep is None:
        return batches
    return [b for b in ([u for u in batch if u in keep] for batch in batches) if b]


def split_batches(lengths, batch_bins, nj):
    """Share the full set's batches among at most `nj` jobs, balancing padded frames (each batch
    goes to the least loaded job, longest batches first). Returns one utterance list per job,
    in the set's sorted order; fewer than `nj` when there are fewer batches."""
    batches = make_batches(lengths, batch_bins)
    n = max(1, min(nj, len(batches)))
    jobs, load = [[] for _ in range(n)], [0] * n
    for batch in batches:  # make_batches returns them longest first
        j = min(range(n), key=lambda k: (load[k], k))
        jobs[j].extend(batch)
        load[j] += lengths[batch[0]] * len(batch)
    return [sorted(j) for j in jobs]


def _read_lines(path):
    if not path.is_file():
        raise UserError(f"{path} is missing: did that decoding job fail? (see its log)")
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rows.append((json.loads(line), line))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{i}: not a JSON record ({e.msg})") from None
    return rows


def _check_once(expected, seen, what):
    """Every id of `expected` exactly once in the list `seen`, else a UserError naming them."""
    counts = Counter(seen)
    missing = sorted(set(expected) - set(counts))
    doubled = sorted(u for u, c in counts.items() if c > 1)
    extra = sorted(set(counts) - set(expected))
    problems = []
    for name, ids in (("missing", missing), ("doubled", doubled), ("not in the data dir", extra)):
        if ids:
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            problems.append(f"{len(ids)} {name} ({shown})")
    if problems:
        raise UserError(f"{what}: utterances " + "; ".join(problems))


def decoded_utts(parts, utts):
    """The utterances the jobs must have decoded: all of `utts` but those a job skipped (too short,
    unreadable: listed in its `skipped` file), which a merged decode lists in its own."""
    skipped = {u for p in parts for u in read_skipped(Path(p) / SKIPPED_FILE)}
    return [u for u in utts if u not in skipped]


def merge_exits(parts, utts, out_dir):
    """Join the parts' exits.jsonl and `skipped` into `out_dir` (exits.jsonl, exit{L}/text,
    skipped), ordered as one job orders them (by exit, then utterance)."""
    rows = [r for p in parts for r in _read_lines(Path(p) / "exits.jsonl")]
    skipped_lines = sorted(line for p in parts if (Path(p) / SKIPPED_FILE).is_file()
                           for line in (Path(p) / SKIPPED_FILE).read_text().splitlines() if line.strip())
    utts = decoded_utts(parts, utts)
    layers = sorted({r["exit"] for r, _ in rows})
    for layer in layers:
        _check_once(utts, [r["utt"] for r, _ in rows if r["exit"] == layer],
                    f"merging {len(parts)} decoding jobs, exit {layer}")
    rows.sort(key=lambda x: (x[0]["exit"], x[0]["utt"]))
    out_dir = Path(out_dir)
    for layer in layers:
        with atomic_open(out_dir / f"exit{layer}" / "text") as f:
            for r, _ in rows:
                if r["exit"] == layer:
                    f.write(f"{r['utt']} {r['hyp']}\n")
    # the parts' lines verbatim: no float is re-printed, so the bytes are one job's
    with atomic_open(out_dir / "exits.jsonl") as f:
        for _, line in rows:
            f.write(line + "\n")
    with atomic_open(out_dir / SKIPPED_FILE) as f:
        f.write("".join(line + "\n" for line in skipped_lines))
    return layers


def merge_policies(parts, utts, out_dir):
    """Join each operating point's results.jsonl and recompute its summary.json over all jobs."""
    points = sorted({d.relative_to(p) for p in map(Path, parts) for d in p.glob("policy_*/thr_*")})
    utts = decoded_utts(parts, utts)
    for point in points:
        rows, summaries = [], []
        for p in map(Path, parts):
            rows += _read_lines(p / point / "results.jsonl")
            s_path = p / point / "summary.json"
            if not s_path.is_file():
                raise UserError(f"{s_path} is missing: did that decoding job fail? (see its log)")
            summaries.append(json.loads(s_path.read_text()))
        _check_once(utts, [r["utt"] for r, _ in rows], f"merging {len(parts)} decoding jobs, {point}")
        rows.sort(key=lambda x: x[0]["utt"])
        with atomic_open(Path(out_dir) / point / "results.jsonl") as f:
            for _, line in rows:
                f.write(line + "\n")
        first = summaries[0]
        # compute_ratio = mean_exit / last exit layer; the layer is an integer, so this is exact
        last = round(first["mean_exit"] / first["compute_ratio"])
        mean_exit = sum(r["exit"] for r, _ in rows) / len(rows)
        summary = {"policy": first["policy"], "threshold": first["threshold"],
                   "wer": error_rate(sum(r["errors"] for r, _ in rows), sum(r["ref_words"] for r, _ in rows)),
                   "mean_exit": mean_exit, "compute_ratio": mean_exit / last,
                   "seconds": sum(s["seconds"] for s in summaries), "utterances": len(rows),
                   "skipped": sum(s.get("skipped", 0) for s in summaries)}
        atomic_write_text(Path(out_dir) / point / "summary.json", json.dumps(summary, indent=1))
    return points
