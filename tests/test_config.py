import pytest

from conftest import run_py
from ee_asr.common.errors import UserError
from ee_asr.train.config import load_config


def test_unknown_top_level_key_fails(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("encoder: conformer_ee\nmax_epcoh: 3\n")
    with pytest.raises(UserError, match="unknown key 'max_epcoh'"):
        load_config(cfg)


def test_defaults_fill_in(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("max_epoch: 3\n")
    config = load_config(cfg)
    assert config["max_epoch"] == 3 and config["encoder"] == "conformer_ee"


def train_cli(tmp_path, config_text):
    """Run the train CLI on an empty data dir with the given YAML."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config_text)
    return run_py("ee_asr.bin.train", "--config", str(cfg), "--train-dir", str(tmp_path), "--valid-dir",
                  str(tmp_path), "--bpemodel", str(tmp_path / "x.model"), "--exp-dir", str(tmp_path / "exp"),
                  check=False)


def test_train_cli_rejects_typo_before_any_work(tmp_path):
    proc = train_cli(tmp_path, "encoder_conf:\n  output_sise: 64\n")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "encoder_conf: unknown key 'output_sise'" in proc.stderr


def test_missing_features_are_named(tmp_path):
    proc = train_cli(tmp_path, "max_epoch: 1\n")
    assert proc.returncode == 2 and "feats.scp: is missing" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_best_criterion_fails_at_load(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("best_criterion: wer\n")
    with pytest.raises(UserError, match="best_criterion: expected one of loss, cer, got .wer."):
        load_config(cfg)
