"""Corpus preparation on fixtures in the official formats, and downloads with resume and checksums."""

import hashlib
import http.server
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import SHARED
from ee_asr.common.errors import DataError, UserError
from ee_asr.corpora import an4, librispeech, tedlium3
from ee_asr.corpora.download import Archive, download, fetch
from ee_asr.data.datadir import read_dict, read_table, validate_data_dir


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support (enough for resuming), recording the requests."""

    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    RangeHandler.requests = []
    handler = lambda *a, **kw: RangeHandler(*a, directory=str(root), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_download_resumes_a_broken_download_and_verifies(server, tmp_path):
    root, url = server
    payload = np.random.default_rng(0).bytes(3_000_000)
    (root / "corpus.tar.gz").write_bytes(payload)
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "corpus.tar.gz.part").write_bytes(payload[:1_000_000])  # an interrupted earlier try
    archive = Archive(f"{url}/corpus.tar.gz", "sha256:" + hashlib.sha256(payload).hexdigest())
    path = download(archive, dest)
    assert path.read_bytes() == payload
    assert RangeHandler.requests == ["bytes=1000000-"]
    assert not (dest / "corpus.tar.gz.part").exists()
    assert download(archive, dest) == path and len(RangeHandler.requests) == 1  # done: no request


def test_download_with_a_wrong_checksum_fails_and_keeps_nothing(server, tmp_path):
    root, url = server
    (root / "x.tar.gz").write_bytes(b"not what was published")
    with pytest.raises(UserError, match="md5 is .* expected 0123"):
        download(Archive(f"{url}/x.tar.gz", "md5:0123456789abcdef0123456789abcdef"), tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []


def test_download_reports_http_errors(server, tmp_path):
    _, url = server
    with pytest.raises(UserError, match="HTTP 404"):
        download(Archive(f"{url}/missing.tgz"), tmp_path)


def tone(seconds, seed):
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


def make_tar(tar_path, src_dir, arcname):
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(src_dir, arcname=arcname)


def test_librispeech_preparation_on_a_fixture_tree(tmp_path):
    datadir = tmp_path / "downloads"
    datadir.mkdir()
    for k, subset in enumerate(librispeech.ARCHIVES):
        if subset in ("train-clean-360", "train-other-500"):
            continue
        tree = tmp_path / "src" / subset
        chapter = tree / f"{100 + k}" / "2000"
        chapter.mkdir(parents=True)
        lines = []
        for i in range(2):
            utt = f"{100 + k}-2000-{i:04d}"
            soundfile.write(chapter / f"{utt}.flac", tone(0.5 + 0.1 * i, k * 10 + i), 16000)
            lines.append(f"{utt} HELLO WORLD NUMBER {i}")
        (chapter / f"{100 + k}-2000.trans.txt").write_text("\n".join(lines) + "\n")
        make_tar(datadir / librispeech.ARCHIVES[subset].name, tree, f"LibriSpeech/{subset}")
    librispeech.prepare(datadir, tmp_path / "data", train="100", download=False)
    for name, n in (("train", 2), ("dev", 4), ("test_clean", 2), ("test_other", 2)):
        assert validate_data_dir(tmp_path / "data" / name) == n
    text = read_dict(tmp_path / "data" / "test_clean" / "text")
    assert list(text.values()) == ["HELLO WORLD NUMBER 0", "HELLO WORLD NUMBER 1"]
    wav = read_dict(tmp_path / "data" / "train" / "wav.scp")
    assert all(v.endswith(".flac") for v in wav.values())
    # missing archives and downloads off: a clear error naming the archive
    with pytest.raises(UserError, match="train-clean-360.tar.gz does not exist"):
        librispeech.prepare(datadir, tmp_path / "data960", train="960", download=False)


def test_librispeech_names_a_transcript_line_without_audio(tmp_path):
    chapter = tmp_path / "dev-clean" / "1" / "2"
    chapter.mkdir(parents=True)
    (chapter / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    with pytest.raises(DataError, match=r"1-2.trans.txt:1: .*1-2-0000.*missing"):
        list(librispeech.read_subset(tmp_path / "dev-clean"))


def make_tedlium_tree(root):
    for k, split in enumerate(("train", "dev", "test")):
        base = root / "TEDLIUM_release-3" / "legacy" / split
        (base / "sph").mkdir(parents=True)
        (base / "stm").mkdir(parents=True)
        talk = f"Talker{k}_2010"
        soundfile.write(base / "sph" / f"{talk}.sph", tone(4.0, k), 16000, format="NIST", subtype="PCM_16")
        (base / "stm" / f"{talk}.stm").write_text(
            f"{talk} 1 {talk} 0.00 1.50 <o,f0,male> it 's a <unk> test\n"
            f"{talk} 1 inter_segment_gap 1.50 2.00 <o,,unknown> ignore_time_segment_in_scoring\n"
            f"{talk} 1 {talk} 2.00 3.75 <o,f0,male> we don 't stop early\n")


def test_tedlium3_preparation_on_a_fixture_with_sph_and_stm(server, tmp_path, monkeypatch):
    www, url = server
    src = tmp_path / "src"
    make_tedlium_tree(src)
    make_tar(www / tedlium3.ARCHIVE.name, src / "TEDLIUM_release-3", "TEDLIUM_release-3")
    archive = www / tedlium3.ARCHIVE.name
    monkeypatch.setattr(tedlium3, "ARCHIVE", Archive(tedlium3.ARCHIVE.url, "sha256:" + sha256(archive)))
    tedlium3.prepare(tmp_path / "downloads", tmp_path / "data", download=True, mirror=url)
    for split in ("train", "dev", "test"):
        assert validate_data_dir(tmp_path / "data" / split) == 2
    text = read_dict(tmp_path / "data" / "dev" / "text")
    assert sorted(text.values()) == ["it's a test", "we don't stop early"]
    seg = [v for _, v, _ in read_table(tmp_path / "data" / "dev" / "segments")]
    assert seg == ["Talker1_2010 0.00 1.50", "Talker1_2010 2.00 3.75"]


def test_tedlium3_names_the_bad_stm_line(tmp_path):
    stm = tmp_path / "x.stm"
    stm.write_text("talk 1 spk 0.0 1.0 <o> fine\ntalk 1 spk 2.0 1.0 <o> backwards\n")
    with pytest.raises(DataError, match=r"x.stm:2: segment ends"):
        list(tedlium3.read_stm(stm))


MINI_AN4 = SHARED / "data" / "mini_an4" / "downloads.tar.gz"


@pytest.mark.skipif(not MINI_AN4.is_file(), reason=f"{MINI_AN4} (ESPnet's real mini AN4) is not on this machine")
def test_an4_download_and_preparation_on_real_mini_an4(server, tmp_path, monkeypatch):
    www, url = server
    with tarfile.open(MINI_AN4) as tar:
        tar.extractall(tmp_path / "mini", filter="data")
    archive = www / an4.ARCHIVE.name
    make_tar(archive, tmp_path / "mini" / "downloads" / "an4", "an4")
    monkeypatch.setattr(an4, "ARCHIVE", Archive(an4.ARCHIVE.url, "sha256:" + sha256(archive)))
    an4.prepare(tmp_path / "downloads", tmp_path / "data", download=True, mirror=url)
    counts = {s: validate_data_dir(tmp_path / "data" / s) for s in ("train", "dev", "test")}
    assert counts == {"train": 3, "dev": 2, "test": 2}
    text = read_dict(tmp_path / "data" / "train" / "text")
    assert text["fash-an251-fash-b"] == "YES"
    assert set(read_dict(tmp_path / "data" / "dev" / "utt2spk").values()) == {"mwhw"}
    # a second run finds the archive extracted and downloads nothing
    n = len(RangeHandler.requests)
    an4.prepare(tmp_path / "downloads", tmp_path / "data", download=True, mirror=url)
    assert len(RangeHandler.requests) == n


def test_fetch_refuses_a_corrupt_archive_with_a_clear_error(tmp_path):
    (tmp_path / "bad.tar.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(UserError, match="could not be extracted"):
        fetch(Archive("http://example.invalid/bad.tar.gz"), tmp_path, download_ok=False)
