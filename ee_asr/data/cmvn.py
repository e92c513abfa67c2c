"""Global mean/variance statistics over a feats.scp, in the npz layout espnet's GlobalMVN reads."""

import kaldiio
import numpy as np

from ee_asr.common.atomic import atomic_path


def compute_global_stats(feats_scp):
    total, total_sq, count = None, None, 0
    for _, feats in kaldiio.load_scp_sequential(str(feats_scp)):
        feats = feats.astype(np.float64)
        total = feats.sum(0) if total is None else total + feats.sum(0)
        total_sq = (feats ** 2).sum(0) if total_sq is None else total_sq + (feats ** 2).sum(0)
        count += len(feats)
    return {"count": np.array(count), "sum": total, "sum_square": total_sq}


def write_stats(stats, path):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **stats)
