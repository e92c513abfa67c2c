"""Batches by total padded frames, from length-sorted buckets.

Sorting by length keeps padding small; filling each batch up to `batch_bins` padded
frames keeps the cost of a step roughly constant whatever the utterance length.
"""

import random


def make_batches(lengths, batch_bins, max_batch_size=None):
    """`lengths`: dict utt -> frames. Returns a list of lists of utt ids, longest first."""
    order = sorted(lengths, key=lambda u: (-lengths[u], u))
    batches, current = [], []
    for utt in order:
        longest = lengths[current[0]] if current else lengths[utt]
        full = max_batch_size is not None and len(current) >= max_batch_size
        if current and (longest * (len(current) + 1) > batch_bins or full):
            batches.append(current)
            current = []
        current.append(utt)
    if current:
        batches.append(current)
    return batches


def epoch_batches(batches, epoch, seed, rank=0, world_size=1, shuffle=True):
    """The batches of one epoch for one rank; every rank gets the same number of steps."""
    order = list(batches)
    if shuffle:
        random.Random(seed * 100003 + epoch).shuffle(order)
    per_rank = len(order) // world_size
    if per_rank == 0:
        raise ValueError(f"{len(order)} batches cannot be shared among {world_size} ranks")
    return order[rank * per_rank:(rank + 1) * per_rank]
