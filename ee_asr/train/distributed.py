"""torch DDP set-up from the environment that `torchrun` provides (gloo on CPU, nccl on GPU)."""

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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


def init_distributed(device_type):
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


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
