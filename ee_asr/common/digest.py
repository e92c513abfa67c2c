"""sha256 digests of files: a checkpoint's digest is kept beside it (`<file>.sha256`, in the format
`sha256sum -c` reads), so that a truncated or corrupt file is detected before torch reads it."""

import hashlib
from pathlib import Path

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.errors import UserError

SUFFIX = ".sha256"


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sidecar(path):
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def write_sidecar(path, digest=None):
    """Record `path`'s digest beside it (computed unless given)."""
    path = Path(path)
    atomic_write_text(sidecar(path), f"{digest or file_sha256(path)}  {path.name}\n")


def check_sidecar(path):
    """Raise UserError when `path` does not match the digest recorded beside it; files written
    before digests were kept have none and pass. Returns whether a digest was checked."""
    side = sidecar(path)
    if not side.is_file():
        return False
    recorded = (side.read_text().split() or [""])[0]
    actual = file_sha256(path)
    if recorded != actual:
        raise UserError(f"{path} is corrupt or truncated: its sha256 {actual[:12]}... differs from the "
                        f"{recorded[:12]}... recorded in {side} when it was written")
    return True
