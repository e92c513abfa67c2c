"""Shared artefacts of a corpus (token model, CMVN statistics, word LM) under content-addressed
names, never replaced in place: every recipe of a corpus shares them, and a trained experiment
records the path (resolved) and sha256 of the ones it read, so rewriting one in place would make
every experiment trained on it undecodable, for good (sentencepiece is not byte-reproducible).

A store dir holds `<sha12>/` per version (sha256 of its main file), `current` (a link to the
newest) and, per file, `<name>` linking to `current/<name>` for readers that predate the store.
A plain file at `<name>` is an older layout's, which older experiments name: it is kept as it is.
"""

import logging
import os
import shutil
from pathlib import Path

from ee_asr.common.digest import file_sha256
from ee_asr.common.errors import UserError

CURRENT = "current"


def _relink(link, target):
    """Point `link` at `target` atomically (a reader sees the old link or the new, never none)."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def publish(new_dir, store, main):
    """Move the files of `new_dir` into `store/<sha12 of main>/` (kept as it is if that version
    exists), make it `current`, and return its path."""
    new_dir, store = Path(new_dir), Path(store)
    if not (new_dir / main).is_file():
        raise UserError(f"{new_dir / main} does not exist: nothing to publish into {store}")
    version = file_sha256(new_dir / main)[:12]
    final = store / version
    if final.is_dir():
        if file_sha256(final / main)[:12] != version:
            raise UserError(f"{final / main} does not match the digest its directory is named by: "
                            f"it was edited in place; restore it or remove {final}")
        shutil.rmtree(new_dir)
        logging.info("%s: the same content as the existing version %s", new_dir / main, final)
    else:
        os.rename(new_dir, final)
    _relink(store / CURRENT, version)
    for f in sorted(final.iterdir()):
        top = store / f.name
        if top.is_symlink() or not top.exists():
            _relink(top, f"{CURRENT}/{f.name}")
        else:
            logging.warning("%s is a file of the layout before versions (older experiments read it): kept; "
                            "the newest version is %s", top, final / f.name)
    return final


def current(store, name):
    """The path to read `name` of a store from: its current version, or an older layout's file."""
    store = Path(store)
    return store / CURRENT / name if (store / CURRENT).exists() else store / name
