"""Batches read, padded and tokenised off the training thread (ESPnet's `num_workers`, lhotse's
background loading), so the device does not wait on disk and Python at every step.

The batches stay planned in the main process (data/batching.py, in the checkpoint): workers only
turn the i-th planned list of utterances into tensors, and the loader hands them back in plan
order, so a run with workers trains on exactly what a run without them does and resume stays
bit-exact. Collation draws nothing from the training process's random generators (a dataset
that perturbs seeds its own generator per epoch and utterance), so where it runs changes nothing.
"""

import time

import torch
from torch.utils.data import DataLoader, Dataset


class PlannedBatches(Dataset):
    """The i-th item is `dataset.collate(batches[i])`: (utts, feats, feat_lens, tokens, token_lens)."""

    def __init__(self, dataset, batches):
        self.dataset, self.batches = dataset, batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.dataset.collate(self.batches[i])


def _as_is(item):
    # the dataset already made the batch; a module-level function, as workers may be spawned
    return item


def _one_blas_thread(_worker_id):
    # A worker is one core's worth of parallelism already; numpy's BLAS (the fbank's mel product)
    # would otherwise start a thread per core in every worker and take the training thread's
    # core. Measured on the demo, 2 cores: on the fly with 2 workers 1.14x the dump's loop
    # without this limit, 1.00x with it. (torch limits its own threads in workers by itself.)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def batch_loader(dataset, batches, num_workers=0, prefetch_factor=2, pin_memory=False):
    """An iterable over the collated `batches` in their order. `num_workers` 0 collates on the
    calling thread; otherwise each worker keeps `prefetch_factor` batches ready. `pin_memory`
    (CUDA): page-locked host tensors, so that `.to(device, non_blocking=True)` overlaps the copy."""
    return DataLoader(PlannedBatches(dataset, batches), batch_size=None, shuffle=False, collate_fn=_as_is,
                      num_workers=num_workers, prefetch_factor=prefetch_factor if num_workers else None,
                      pin_memory=pin_memory, worker_init_fn=_one_blas_thread if num_workers else None)


def to_device(batch, device, non_blocking=False):
    """(utts, x, xl, y, yl) with its tensors on `device` (y and yl may be None)."""
    utts, *tensors = batch
    return (utts, *(t.to(device, non_blocking=non_blocking) if t is not None else None for t in tensors))


class WaitClock:
    """How long the training loop waited for its batches: `waited` seconds inside the loader's
    next(), against `total` seconds of the whole loop (waits and steps)."""

    def __init__(self):
        self.waited, self.start, self.steps = 0.0, None, 0

    def timed(self, iterable):
        """Yield `iterable`'s items, adding the time spent getting each to `waited`."""
        self.start = time.perf_counter()
        it = iter(iterable)
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            self.waited += time.perf_counter() - t
            self.steps += 1
            yield item

    @property
    def total(self):
        return time.perf_counter() - self.start if self.start is not None else 0.0

    def summary(self):
        total = self.total
        return {"loader_wait_seconds": round(self.waited, 3), "loop_seconds": round(total, 3),
                "loader_wait_fraction": round(self.waited / total, 4) if total > 0 else 0.0}


def pin_wanted(device):
    return torch.device(device).type == "cuda"
