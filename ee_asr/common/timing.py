"""Wall-clock timing that waits for the GPU: benchmarks of decoding and of training steps."""

import time

import torch


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, clock=time.perf_counter):
    """Seconds `fn()` takes, to completion (GPU work is asynchronous). `clock=time.thread_time`
    counts only this thread's CPU time: with one torch thread on a CPU, that is the work done,
    whatever else the machine runs meanwhile."""
    sync()
    start = clock()
    fn()
    sync()
    return clock() - start


def work_clock(device="cpu"):
    """The clock a benchmark should read: this thread's CPU time on a CPU with one torch thread
    (what other processes on a shared machine do not inflate), else wall-clock time."""
    return time.thread_time if str(device) == "cpu" and torch.get_num_threads() == 1 else time.perf_counter
