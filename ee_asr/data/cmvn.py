"""Global mean/variance statistics over a feats.scp, in the npz layout espnet's GlobalMVN reads."""

import kaldiio
import numpy as np

from ee_asr.common.atomic import atomic_path
from ee_asr.common.errors import DataError, UserError


def compute_global_stats(feats_scp):
    total, total_sq, count = None, None, 0
    for _, feats in kaldiio.load_scp_sequential(str(feats_scp)):
        feats = feats.astype(np.float64)
        total = feats.sum(0) if total is None else total + feats.sum(0)
        total_sq = (feats ** 2).sum(0) if total_sq is None else total_sq + (feats ** 2).sum(0)
        count += len(feats)
    return {"count": np.array(count), "sum": total, "sum_square": total_sq}


def merge_stats(paths):
    """The sums of several jobs' statistics npz files (stage 2 of a fbank_online or raw_online dump)."""
    out = None
    for path in paths:
        check_stats_file(path)
        with np.load(path) as s:
            part = {k: s[k].astype(np.float64) if k != "count" else s[k] for k in ("count", "sum", "sum_square")}
        out = part if out is None else {k: out[k] + part[k] for k in out}
    if out is None:
        raise UserError("no statistics files to merge: run stage 2 (--feats-type fbank_online or raw_online) first")
    return out


def write_stats(stats, path):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **stats)


def check_stats_file(path):
    """Fail naming the file when it is not a readable statistics npz (truncated, another format)."""
    try:
        with np.load(path) as stats:
            missing = [k for k in ("count", "sum", "sum_square") if k not in stats]
            count = float(stats["count"]) if not missing else 0
    except Exception as e:  # numpy/zipfile raise many kinds for a damaged file
        raise DataError(path, f"not a readable CMVN statistics file ({type(e).__name__}): recompute it "
                              f"(stage 2)") from None
    if missing:
        raise DataError(path, f"CMVN statistics without {', '.join(missing)}: recompute it (stage 2)")
    if not count > 0:
        raise DataError(path, "CMVN statistics over 0 frames: recompute it (stage 2)")
