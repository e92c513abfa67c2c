"""Write files so that a reader never sees a half-written one.

Every output that a later stage reads is written to a temporary name in the same
directory and renamed into place: rename is atomic on POSIX, so an interrupted job
leaves either the old file or nothing, never a truncated file.
"""

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from ee_asr.common.errors import UserError


def make_output_dir(path, probe=False):
    """Create directory `path` (and its parents); UserError naming it when that fails (a read-only
    filesystem, a file in the way, no permission). `probe`: also check that a file can be written
    in it, before a long job (an export, a training) finds out at its end."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if probe:
            fd, tmp = tempfile.mkstemp(prefix=".write_probe.", dir=path)
            os.close(fd)
            os.unlink(tmp)
    except FileExistsError:
        raise UserError(f"cannot create directory {path}: a file of that name is in the way") from None
    except OSError as e:
        raise UserError(f"cannot write to directory {path}: {e.strerror}") from None
    return path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it to `path` on success."""
    path = Path(path)
    make_output_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):  # a full disk is not a bug: say so, keep the old file
            raise UserError(f"cannot write {path}: {os.strerror(e.errno)}") from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path, mode="w", encoding="utf-8"):
    """Open a temporary file for writing; it becomes `path` only when closed cleanly."""
    with atomic_path(path) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as f:
            yield f


def atomic_write_text(path, text):
    with atomic_open(path) as f:
        f.write(text)
