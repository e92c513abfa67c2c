"""A lock on a directory that one process writes (an experiment, a decode dir): a second process
refuses, naming the holder, instead of both overwriting each other's outputs.

The lock file is made with link(2) from a complete temporary file, which fails when the lock
exists: taking it is atomic and a reader never sees a half-written holder. It holds the pid,
host and start time of its owner. A lock whose process is dead (same host) is stale: it is
taken over with a warning, so a kill -9 never leaves a directory locked for good.
"""

import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path

from ee_asr.common.atomic import make_output_dir
from ee_asr.common.errors import UserError

LOCK_NAME = ".lock"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # a zombie has exited: it only waits for its parent to read its status
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _describe(holder):
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("start", 0)))
    return f"{holder.get('what', 'a process')} (pid {holder.get('pid')} on {holder.get('host')}, since {started})"


class DirLock:
    """`with DirLock(dir, "training"):` holds `<dir>/.lock` for the block."""

    def __init__(self, directory, what, name=LOCK_NAME, pid=None):
        """`pid`: the process that holds the lock, when not this one (a shell script taking a
        lock through a helper); it is released when that process ends, or taken over once dead."""
        self.dir, self.what = Path(directory), what
        self.path = self.dir / name
        self.me = {"pid": pid or os.getpid(), "host": socket.gethostname(), "start": time.time(), "what": what}
        self.held = False

    def _read(self):
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # not ours to judge: written by something else

    def acquire(self):
        make_output_dir(self.dir)
        fd, tmp = tempfile.mkstemp(prefix=".lock.", dir=self.dir)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.me, f)
            for _ in range(3):
                try:
                    os.link(tmp, self.path)
                    self.held = True
                    return self
                except FileExistsError:
                    holder = self._read()
                    if holder is None:
                        continue  # released meanwhile: try again
                    if holder.get("host") == self.me["host"] and holder.get("pid") == self.me["pid"]:
                        self.held = True  # already ours (a script that locks once per stage)
                        return self
                    if holder.get("host") == self.me["host"] and isinstance(holder.get("pid"), int) \
                            and not _alive(holder["pid"]):
                        logging.warning("%s: taking over a stale lock of %s, which is no longer running",
                                        self.path, _describe(holder))
                        self.path.unlink(missing_ok=True)
                        continue
                    raise UserError(f"{self.dir} is in use by {_describe(holder)}: wait for it to finish, "
                                    f"or write elsewhere (if that process is gone, remove {self.path})")
            raise UserError(f"{self.path}: could not take the lock (it keeps changing hands)")
        finally:
            os.unlink(tmp)

    def release(self):
        if self.held and (self._read() or {}).get("pid") == self.me["pid"]:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
