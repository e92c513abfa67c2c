"""The exported model's manifest (export/onnx_export.py writes it) and the files it names,
each checked against its recorded sha256 before use."""

import json
from pathlib import Path

from ee_asr.common.digest import file_sha256
from ee_asr.common.errors import UserError
from ee_asr.exits.exit_classifier import ExitClassifier

MANIFEST = "manifest.json"
FORMAT_VERSION = 1

def read_manifest(onnx_dir):
    path = Path(onnx_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path} does not exist: export the model first (python -m ee_asr.bin.export_onnx)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e}); export the model again (python -m ee_asr.bin.export_onnx)") \
            from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: format_version {manifest.get('format_version')} is not {FORMAT_VERSION}")
    return manifest


def checked_file(onnx_dir, manifest, key, what, fix):
    """The file the manifest names under `key`, checked against its `<key>_sha256`; UserError
    naming `what` and `fix` when the export carries none, or the file is missing or another."""
    name = manifest.get(key)
    if not name:
        raise UserError(f"{Path(onnx_dir) / MANIFEST} names no {what}: {fix}")
    path = Path(onnx_dir) / name
    if not path.is_file():
        raise UserError(f"{what} {path} named by the manifest does not exist")
    if file_sha256(path) != manifest.get(f"{key}_sha256"):
        raise UserError(f"{what} {path} is not the one the model was exported with (sha256 differs)")
    return path


def check_token_model(onnx_dir, manifest):
    return checked_file(onnx_dir, manifest, "token_model", "token model", "export the model again")


def calibration_file(onnx_dir, manifest):
    """The calibration.json exported with the model (bin.calibrate_exits, then export_onnx)."""
    return checked_file(onnx_dir, manifest, "calibration", "calibration",
                        "calibrate the experiment (python -m ee_asr.bin.calibrate_exits), then export it again")


def load_exit_classifier(onnx_dir, manifest):
    """The exit classifier the model was exported with, for the `learned` policy; UserError naming
    the fix when the export carries none or the file is not the exported one."""
    path = checked_file(onnx_dir, manifest, "exit_classifier", "exit classifier",
                        "the learned policy needs one: fit it (python -m ee_asr.bin.fit_exit_classifier --exp-dir "
                        "<exp> --data-dir <dev dump>), then export again "
                        "(python -m ee_asr.bin.export_onnx --exp-dir <exp>)")
    classifier = ExitClassifier.load(path)
    if classifier.exit_layers != manifest["exit_layers"]:
        raise UserError(f"{path} was fitted for exits {classifier.exit_layers}, "
                        f"the model has {manifest['exit_layers']}")
    return classifier
