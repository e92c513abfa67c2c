"""`exp/<tag>/config.yaml`: the resolved configuration that training writes and that every later
step (resuming, decoding, transcribing, exporting) reads. One reader and one writer for all, and
the check that the files it names outside the exp dir (token model, CMVN) are still the same."""

import logging
from pathlib import Path

import yaml

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.digest import file_sha256
from ee_asr.common.errors import UserError
from ee_asr.common.yaml_file import read_yaml_mapping

EXP_CONFIG = "config.yaml"


def exp_config_path(exp_dir):
    return Path(exp_dir) / EXP_CONFIG


def read_exp_config(exp_dir):
    return read_yaml_mapping(exp_config_path(exp_dir), "experiment config",
                             "train the model first, or restore it (stage 4)")


def write_exp_config(config, exp_dir):
    atomic_write_text(exp_config_path(exp_dir), yaml.safe_dump(config, sort_keys=False))


# Files outside the exp dir that a trained model depends on, by the config key holding their digest.
# Replacing one (rerunning stage 3 into the same token_list dir) would make decoding emit wrong text
# with exit 0, so training records their sha256 and every loader compares.
ASSET_KEY = "file_sha256"
ASSETS = {"bpemodel": "token model", "cmvn": "CMVN statistics"}
_warned_without_digests = set()


def asset_paths(config):
    paths = {"bpemodel": config.get("bpemodel"), "cmvn": (config.get("normalize_conf") or {}).get("stats_file")}
    return {role: p for role, p in paths.items() if p}


def record_asset_digests(config):
    """Return `config` with the sha256 of its token model and CMVN file under `file_sha256`."""
    return {**config, ASSET_KEY: {role: file_sha256(p) for role, p in asset_paths(config).items()}}


def check_asset_digests(config, exp_dir):
    """Refuse when the token model or CMVN file differs from the one the experiment was trained with."""
    path, recorded = exp_config_path(exp_dir), config.get(ASSET_KEY)
    for role, file in asset_paths(config).items():
        what = ASSETS[role]
        if not Path(file).is_file():
            raise UserError(f"{path} names the {what} {file}, which does not exist: restore it, or retrain "
                            f"(stage 4)")
        if not recorded or role not in recorded:
            if str(exp_dir) not in _warned_without_digests:
                _warned_without_digests.add(str(exp_dir))
                logging.warning("%s records no digest of its token model or CMVN file (trained before they were "
                                "recorded): cannot check that %s are the files it was trained with", path,
                                " and ".join(asset_paths(config).values()))
            continue
        actual = file_sha256(file)
        if actual != recorded[role]:
            raise UserError(f"{file} is not the {what} that {path} was trained with (sha256 {actual[:12]}..., "
                            f"trained with {recorded[role][:12]}...; was it replaced, e.g. by rerunning stage 3?): "
                            f"restore the {what} the experiment was trained with, or retrain (stage 4) with a new tag")
