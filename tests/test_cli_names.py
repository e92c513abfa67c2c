"""One name per idea across every command-line tool; old spellings fail naming the new one."""

import ast

import pytest

from conftest import ROOT, run_py

BANNED = {"--exp", "--data", "--out", "--output-dir", "--beam", "--nbest-beam", "--datadir"}


def declared_options(path):
    """Option strings passed to add_argument in a bin module."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("--"):
                    yield arg.value


def test_no_tool_declares_an_old_spelling():
    bad = [f"{p.name}: {o}" for p in sorted((ROOT / "ee_asr" / "bin").glob("*.py"))
           for o in declared_options(p) if o in BANNED]
    assert not bad, bad


@pytest.mark.parametrize("tool, old, new", [("decode", "--exp", "--exp-dir"),
                                            ("decode_policy", "--beam", "--nbest-size"),
                                            ("prepare_corpus", "--datadir", "--download-dir")])
def test_old_spelling_fails_naming_the_new_one(tool, old, new):
    proc = run_py(f"ee_asr.bin.{tool}", old, "x", check=False)
    assert proc.returncode == 2 and f"{old} was renamed {new}" in proc.stderr
