"""The one reader of YAML files that must hold a mapping (training configs, resolved experiment
configs): a missing, unparsable or non-mapping file is a UserError naming it and, where given, the fix."""

from pathlib import Path

import yaml

from ee_asr.common.errors import UserError


def read_yaml_mapping(path, what="config", fix=""):
    """The mapping in `path`; `what` names the file in messages, `fix` is appended to them."""
    path, hint = Path(path), f"; {fix}" if fix else ""
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist{hint}")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid YAML ({e}){hint}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping{hint}")
    return data
