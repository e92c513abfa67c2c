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
    manifest = json.loads(path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: format_version {manifest.get('format_version')} is not {FORMAT_VERSION}")
    return manifest


def check_token_model(onnx_dir, manifest):
    path = Path(onnx_dir) / manifest["token_model"]
    if not path.is_file():
        raise UserError(f"token model {path} named by the manifest does not exist")
    if file_sha256(path) != manifest["token_model_sha256"]:
        raise UserError(f"token model {path} is not the one the model was exported with (sha256 differs)")
    return path


def load_exit_classifier(onnx_dir, manifest):
    """The exit classifier the model was exported with, for the `learned` policy; UserError naming
    the fix when the export carries none or the file is not the exported one."""
    name = manifest.get("exit_classifier")
    if not name:
        raise UserError(f"the learned policy needs an exit classifier, and {Path(onnx_dir) / MANIFEST} names none: "
                        "fit one (python -m ee_asr.bin.fit_exit_classifier --exp-dir <exp> --data-dir <dev dump>), "
                        "then export again (python -m ee_asr.bin.export_onnx --exp-dir <exp>)")
    path = Path(onnx_dir) / name
    if not path.is_file():
        raise UserError(f"exit classifier {path} named by the manifest does not exist")
    if file_sha256(path) != manifest.get("exit_classifier_sha256"):
        raise UserError(f"exit classifier {path} is not the one the model was exported with (sha256 differs)")
    classifier = ExitClassifier.load(path)
    if classifier.exit_layers != manifest["exit_layers"]:
        raise UserError(f"{path} was fitted for exits {classifier.exit_layers}, "
                        f"the model has {manifest['exit_layers']}")
    return classifier
