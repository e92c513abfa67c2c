"""Download corpus archives with resume and checksums, and extract them once.

A download goes to `<name>.part`; an interrupted one is resumed with an HTTP Range request
(a server that ignores Range sends the whole file, which then restarts the part). The
finished file is checked against the publisher's checksum before it is renamed into place,
so a complete-looking archive is always a verified one. Extraction leaves a marker holding
the archive's checksum, so reruns skip it and a replaced archive is extracted again.
"""

import hashlib
import logging
import os
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ee_asr.common.atomic import atomic_write_text, make_output_dir
from ee_asr.common.errors import UserError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    url: str
    checksum: Optional[str] = None  # "md5:<hex>" or "sha256:<hex>", as the publisher gives it

    @property
    def name(self):
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def at(self, mirror):
        """The same archive (same checksum) fetched from `mirror`, a URL prefix; None: the official host."""
        return Archive(f"{mirror.rstrip('/')}/{self.name}", self.checksum) if mirror else self


def file_digest(path, algorithm):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def verify(path, checksum):
    """Raise UserError when `path` does not match `checksum` ("algo:hex"); None skips the check."""
    if not checksum:
        return
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("md5", "sha1", "sha256") or not expected:
        raise UserError(f"checksum {checksum!r}: expected md5:<hex>, sha1:<hex> or sha256:<hex>")
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise UserError(f"{path}: {algorithm} is {actual}, expected {expected}: the download is corrupt "
                        f"(it has been removed; rerun to download it again)")


def _progress(name, done, total, start, last_log):
    now = time.time()
    if now - last_log < 10:
        return last_log
    rate = done / max(now - start, 1e-9)
    if total:
        eta = (total - done) / max(rate, 1e-9)
        logging.info("%s: %.1f/%.1f MB, %.1f MB/s, eta %.0fs", name, done / 1e6, total / 1e6, rate / 1e6, eta)
    else:
        logging.info("%s: %.1f MB, %.1f MB/s", name, done / 1e6, rate / 1e6)
    return now


def download(archive: Archive, dest_dir, retries=3, timeout=60):
    """Return the path of the verified archive in `dest_dir`, downloading or resuming as needed."""
    dest_dir = Path(dest_dir)
    make_output_dir(dest_dir)
    final, part = dest_dir / archive.name, dest_dir / f"{archive.name}.part"
    if final.is_file():
        return final
    for attempt in range(1, retries + 1):
        have = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(archive.url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                resumed = have > 0 and response.status == 206
                if have and not resumed:
                    logging.info("%s: the server does not resume, downloading from the start", archive.name)
                    have = 0
                length = response.headers.get("Content-Length")
                total = have + int(length) if length else None
                logging.info("%s: %s from %s", archive.name, f"resuming at {have / 1e6:.1f} MB" if resumed
                             else "downloading", archive.url)
                start, last_log, done = time.time(), 0.0, have
                with open(part, "ab" if resumed else "wb") as f:
                    while block := response.read(CHUNK):
                        f.write(block)
                        done += len(block)
                        last_log = _progress(archive.name, done, total, start, last_log)
            break
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # the part is already complete
                break
            raise UserError(f"downloading {archive.url} failed: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            if attempt == retries:
                raise UserError(f"downloading {archive.url} failed after {retries} tries: {e}; rerun to "
                                f"resume from {part}") from None
            logging.warning("%s: %s; retrying (%d/%d)", archive.name, e, attempt, retries)
            time.sleep(min(2 ** attempt, 30))
    try:
        verify(part, archive.checksum)
    except UserError:
        part.unlink()
        raise
    os.replace(part, final)
    return final


def extract(archive_path, dest_dir, checksum=None):
    """Extract a tar archive into `dest_dir` once; the marker names the archive and its checksum."""
    archive_path, dest_dir = Path(archive_path), Path(dest_dir)
    marker = dest_dir / f".{archive_path.name}.extracted"
    stamp = f"{archive_path.name} {checksum or archive_path.stat().st_size}\n"
    if marker.is_file() and marker.read_text() == stamp:
        logging.info("%s already extracted in %s", archive_path.name, dest_dir)
        return
    logging.info("extracting %s into %s", archive_path.name, dest_dir)
    try:
        with tarfile.open(archive_path) as tar:
            tar.extractall(dest_dir, filter="data")  # refuses absolute paths and ../ members
    except (tarfile.TarError, EOFError, OSError) as e:
        raise UserError(f"{archive_path} could not be extracted ({e}); remove it and rerun to download "
                        f"it again") from None
    atomic_write_text(marker, stamp)


def fetch(archive: Archive, datadir, download_ok=True, mirror=None):
    """Download (if allowed and needed), verify and extract `archive` into `datadir`."""
    archive = archive.at(mirror)
    path = Path(datadir) / archive.name
    if not path.is_file():
        if not download_ok:
            raise UserError(f"{path} does not exist (downloads are off: give --download true, or put the "
                            f"archive from {archive.url} there)")
        path = download(archive, datadir)
    extract(path, datadir, archive.checksum)
