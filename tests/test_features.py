import shutil

import kaldiio
import numpy as np
import pytest

from conftest import run_py
from ee_asr.common.errors import UserError
from ee_asr.data.cmvn import compute_global_stats
from ee_asr.data.features import write_features


def test_fbank_ark_scp_and_lengths(data_dir, tmp_path):
    n = write_features(data_dir / "wav.scp", tmp_path / "feats.1")
    assert n == 4
    feats = dict(kaldiio.load_scp_sequential(str(tmp_path / "feats.1.scp")))
    assert set(feats) == {"spk1-a", "spk1-b", "spk2-a", "spk2-b"}
    assert all(f.shape[1] == 80 for f in feats.values())
    # 10 ms shift: 0.8 s -> 80 frames (snip_edges=False)
    assert feats["spk1-a"].shape[0] == 80
    lens = dict(line.split() for line in (tmp_path / "feats.1.num_frames").read_text().splitlines())
    assert int(lens["spk2-b"]) == feats["spk2-b"].shape[0]
    stats = compute_global_stats(tmp_path / "feats.1.scp")
    assert int(stats["count"]) == sum(len(f) for f in feats.values())
    assert np.allclose(stats["sum"], sum(f.sum(0) for f in feats.values()), rtol=1e-4)


def test_segments_cut_recordings(data_dir, tmp_path):
    seg = tmp_path / "segments"
    seg.write_text("spk1-a-0 spk1-a 0.0 0.5\nspk1-a-1 spk1-a 0.3 0.8\n")
    write_features(data_dir / "wav.scp", tmp_path / "seg", segments=seg)
    feats = dict(kaldiio.load_scp_sequential(str(tmp_path / "seg.scp")))
    assert feats["spk1-a-0"].shape[0] == 50 and feats["spk1-a-1"].shape[0] == 50


def test_failed_job_leaves_no_output(data_dir, tmp_path):
    lines = (data_dir / "wav.scp").read_text().splitlines()
    lines[3] = f"spk2-b {tmp_path}/missing.wav"
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match="missing.wav"):
        write_features(data_dir / "wav.scp", tmp_path / "out")
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_cli_error_is_one_clear_line(data_dir, tmp_path):
    (data_dir / "wav.scp").write_text(f"spk1-a {tmp_path}/gone.wav\n")
    proc = run_py("ee_asr.bin.compute_features", "--wav-scp", str(data_dir / "wav.scp"),
                  "--out-prefix", str(tmp_path / "f"), check=False)
    assert proc.returncode == 2
    assert "gone.wav" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (make system-deps)")
def test_speed_perturbation_makes_prefixed_copies_that_sox_resamples(data_dir, tmp_path):
    from ee_asr.data.datadir import read_dict, validate_data_dir
    from ee_asr.data.speed_perturb import perturb_data_dir

    assert perturb_data_dir(data_dir, tmp_path / "sp", ["0.9", "1.0", "1.1"]) == 12
    validate_data_dir(tmp_path / "sp", check_audio=False)
    assert read_dict(tmp_path / "sp" / "utt2spk")["sp0.9-spk1-a"] == "sp0.9-spk1"
    assert read_dict(tmp_path / "sp" / "text")["sp1.1-spk2-b"] == read_dict(data_dir / "text")["spk2-b"]
    write_features(tmp_path / "sp" / "wav.scp", tmp_path / "sp_feats")
    lens = {k: int(v) for k, v in read_dict(tmp_path / "sp_feats.num_frames").items()}
    assert lens["spk1-a"] == 80
    assert abs(lens["sp0.9-spk1-a"] - 80 / 0.9) <= 1 and abs(lens["sp1.1-spk1-a"] - 80 / 1.1) <= 1
    (data_dir / "segments").write_text("spk1-a-0 spk1-a 0.0 0.5\n")
    perturb_data_dir(data_dir, tmp_path / "sp_seg", ["0.9"])
    assert read_dict(tmp_path / "sp_seg" / "segments")["sp0.9-spk1-a-0"] == "sp0.9-spk1-a 0.000 0.556"
