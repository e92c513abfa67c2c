"""The environment header of RESULTS.md: when, from which commit, with which versions."""

import datetime
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def _version(pkg):
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_hash():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
        return (out.stdout.strip() or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def environment_header():
    return "\n".join([
        "## Environment",
        f"- date: `{datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M:%S %Z')}`",
        f"- git hash: `{git_hash()}`",
        f"- python version: `{platform.python_version()}`",
        f"- torch version: `{_version('torch')}`",
        f"- espnet version: `{_version('espnet')}`",
        f"- ee-asr version: `{_version('ee-asr')}`",
        "",
    ])
