"""Wall-clock timing that waits for the GPU: benchmarks of decoding and of training steps."""

import time

import torch


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    """Seconds `fn()` takes, to completion (GPU work is asynchronous)."""
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start
