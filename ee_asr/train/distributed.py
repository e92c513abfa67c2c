"""torch DDP set-up from the environment that `torchrun` provides (gloo on CPU, nccl on GPU).

Several nodes (`torchrun --nnodes N --rdzv-backend c10d --rdzv-endpoint HOST:PORT` on each) need
a filesystem that every node sees at the same path: rank 0 alone writes the checkpoints, and
every rank resumes from them (`check_resume_point` refuses to start when they disagree).
"""

import datetime
import hashlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ee_asr.common.errors import UserError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def enabled(self):
        return self.world_size > 1


# Seconds a collective waits for the other ranks before failing (gloo's own default is 30 min, so a
# dead node used to hang the others that long). It must exceed what the other ranks wait for at
# the end of an epoch: rank 0's validation and checkpoint writing. `--dist-timeout` of
# ee_asr.bin.train sets it through this variable, which every rank torchrun starts inherits.
TIMEOUT_ENV = "EE_ASR_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 900


def available_cores():
    """Cores this process may run on (a Slurm or cgroup cpuset, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_rank(requested, local_world_size, cores=None):
    """The node's cores shared by its ranks: `requested` threads at most, at least one each.
    Without this, N ranks of `num_threads` each oversubscribe a node N times over."""
    cores = available_cores() if cores is None else cores
    return max(1, min(requested, cores // max(local_world_size, 1)))


def init_distributed(device_type, timeout_s=None):
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    backend = "nccl" if device_type == "cuda" else "gloo"
    timeout_s = float(timeout_s or os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    info = DistInfo(dist.get_rank(), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = threads_per_rank(torch.get_num_threads(), local_ranks)
    torch.set_num_threads(threads)
    logging.info("rank %d of %d (local rank %d of %d on this node): %d torch threads, %s, timeout %.0fs",
                 info.rank, world_size, info.local_rank, local_ranks, threads, backend, timeout_s)
    return info


def check_resume_point(info, epoch, step, source):
    """Before the first step: every rank must resume where rank 0 does. A node that does not see
    rank 0's checkpoints (no shared filesystem) would start from scratch and diverge silently
    until the epoch's digest check; here it stops at once, naming the ranks and epochs."""
    if not info.enabled:
        return
    points = [None] * info.world_size
    dist.all_gather_object(points, (epoch, step, str(source)))
    if any(p[:2] != points[0][:2] for p in points):
        where = "; ".join(f"rank {r}: epoch {e} step {s} ({src})" for r, (e, s, src) in enumerate(points))
        raise UserError(f"the ranks would resume from different points ({where}). Every rank must see "
                        f"the same experiment dir: training on several nodes needs a shared filesystem")
    logging.info("all %d ranks start after epoch %d (step %d)", info.world_size, epoch, step)


def barrier(info):
    if info.enabled:
        dist.barrier()


def parameter_digest(model):
    """A hash of every parameter's bytes: equal digests mean bit-identical replicas. Buffers
    are left out: BatchNorm running statistics follow each rank's own batches by design."""
    h = hashlib.sha1()
    for name, p in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def gather_digests(info, digest):
    if not info.enabled:
        return [digest]
    out = [None] * info.world_size
    dist.all_gather_object(out, digest)
    return out
