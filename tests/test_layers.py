"""The package reads as layers: a module imports only from lower layers or its own package."""

import ast

from conftest import ROOT

# deploy (the ONNX runtime) must stay torch-free: it may import common/ and the torch-free modules of
# data/ and exits/ (tests/test_onnx.py runs it in a process that checks torch never loads)
RANK = {"common": 0, "data": 1, "corpora": 2, "models": 2, "exits": 2, "train": 3, "decode": 3, "score": 3,
        "deploy": 3, "export": 4, "benchmark": 5, "bin": 6}


def imported_packages(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "ee_asr" and len(parts) > 1 and parts[1] in RANK:
                yield parts[1]


def test_lower_layers_never_import_upper_ones():
    bad = []
    for path in sorted((ROOT / "ee_asr").glob("*/*.py")):
        own = path.parent.name
        for pkg in imported_packages(path):
            if pkg != own and RANK[pkg] >= RANK[own]:
                bad.append(f"{path.relative_to(ROOT)} imports ee_asr.{pkg}")
    assert not bad, "\n".join(bad)


def test_modules_stay_small():
    big = [str(p.relative_to(ROOT)) for p in (ROOT / "ee_asr").rglob("*.py") if len(p.read_text().splitlines()) > 400]
    assert not big
