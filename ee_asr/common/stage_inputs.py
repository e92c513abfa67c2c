"""What a recipe stage read, as digests: the stage's done marker records them, so that a rerun
redoes a stage exactly when its options *or the content of its inputs* changed, and says which.

An input is a file (its sha256) or a directory (every file below it, recursively, by content,
leaving out hidden names, `log/`, `split/`, `*.log` and links, which are bookkeeping or pointers;
plus the files its `wav.scp` or `feats.scp` lists, by size and modification time only).
Listed audio and feature archives are never read: on a LibriSpeech-sized corpus that would be
hundreds of GB, while a stat of each file sees any rewrite. Content digests are cached in the
marker itself by (size, mtime_ns): a file whose stat has not moved is not read again, and one
merely touched is read but counts as unchanged. Cost on a synthetic LibriSpeech-sized data dir
(281,241 utterances, 88 MB of tables, as many audio files; warm page cache, one core): 1.9 s the
first time, 1.3 s unchanged (the stats), 1.5 s with one table touched; its dump dir 0.3 s.

A corpus as downloaded (`tree:DIR`, stage 1's input) is never read either: every file below DIR
by size and modification time, digested per folder two levels down (a LibriSpeech subset, a
TED-LIUM part), so a change is named by the folder it is in and the marker stays small. Stage 1
downloads into that tree itself, so a tree is recorded as it is when its stage ends. Cost on a
LibriSpeech-shaped tree (293,112 files in 7 subsets; warm page cache, one core): 2.2 s a look.
"""

import hashlib
import json
import os
import re
import time
from pathlib import Path

from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.digest import file_sha256

MARKER_VERSION = 1
RACY_NS = 2 * 10**9
SKIP_DIRS = {"log", "split"}
LISTS = ("wav.scp", "feats.scp")  # tables whose second field names a file the set is made of
_OFFSET = re.compile(r"^(.*):\d+$")  # an ark path with a byte offset


def _stat_key(st):
    return [st.st_size, st.st_mtime_ns]


def _file_entry(path, cached):
    st = os.stat(path)
    key = _stat_key(st)
    if cached and cached.get("stat") == key and cached.get("sha256"):
        return {"stat": key, "sha256": cached["sha256"]}
    # a file written in the last seconds may be rewritten within the clock's granularity with
    # the same size and time: its digest is not cached by stat (read again next time)
    recent = time.time_ns() - st.st_mtime_ns < RACY_NS
    return {"stat": None if recent else key, "sha256": file_sha256(path)}


def _members(root):
    """Files below `root` that count as its content, as sorted relative paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS
                             and not os.path.islink(os.path.join(dirpath, d)))
        for name in filenames:
            full = os.path.join(dirpath, name)
            if name.startswith(".") or name.endswith(".log") or os.path.islink(full):
                continue
            out.append(os.path.relpath(full, root))
    return sorted(out)


def listed_files(table):
    """The files a wav.scp or feats.scp names (second field; ark offsets dropped; pipes and
    commands, whose text is already in the table's digest, left out), each once."""
    seen = {}
    with open(table, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(maxsplit=1)
            if len(parts) < 2:
                continue
            target = parts[1].strip()
            if target.endswith("|") or " " in target:
                continue
            m = _OFFSET.match(target)
            seen.setdefault(m.group(1) if m else target, None)
    return list(seen)


def listed_signature(table):
    """A digest of the size and mtime of every file `table` lists (a missing one counts too)."""
    h = hashlib.sha256()
    files = listed_files(table)
    for p in files:
        try:
            st = os.stat(p)
            h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\tmissing\n".encode())
    return {"files": len(files), "sha256": h.hexdigest()}


TREE = "tree:"
TREE_DEPTH = 2


def tree_groups(root):
    """{group: sha256 over its files' relative paths, sizes and mtimes}: a group is a file's first
    TREE_DEPTH path components (the file itself when it is shallower). Links are followed: a
    corpus may be a link farm."""
    groups = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            try:
                st = os.stat(full)
                line = f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n"
            except OSError:  # a dangling link
                line = f"{rel}\tmissing\n"
            group = "/".join(rel.split(os.sep)[:TREE_DEPTH])
            groups.setdefault(group, hashlib.sha256()).update(line.encode())
    return {g: h.hexdigest() for g, h in sorted(groups.items())}


def describe(path, cached=None):
    """The entry of one input: absent, a file, a directory of files (with its listed files), or
    `tree:DIR` (every file by size and mtime, per group)."""
    cached = cached or {}
    if path.startswith(TREE):
        root = path[len(TREE):]
        return {"kind": "tree", "groups": tree_groups(root)} if os.path.isdir(root) else {"kind": "absent"}
    if not os.path.exists(path):
        return {"kind": "absent"}
    if os.path.isfile(path):
        return {"kind": "file", **_file_entry(path, cached if cached.get("kind") == "file" else None)}
    old = cached.get("files", {}) if cached.get("kind") == "dir" else {}
    files = {rel: _file_entry(os.path.join(path, rel), old.get(rel)) for rel in _members(path)}
    entry = {"kind": "dir", "files": files}
    listed = {name: listed_signature(os.path.join(path, name)) for name in LISTS if name in files}
    if listed:
        entry["listed"] = listed
    return entry


def manifest(paths, recorded=None):
    """{path: entry} of the inputs, reusing the digests in `recorded` where a file's stat is unchanged."""
    recorded = recorded or {}
    return {str(p): describe(str(p), recorded.get(str(p))) for p in paths}


def _strip(entry):
    """An entry without its stat, for comparing content."""
    if entry.get("kind") == "file":
        return {"kind": "file", "sha256": entry["sha256"]}
    if entry.get("kind") == "dir":
        return {**entry, "files": {k: v["sha256"] for k, v in entry["files"].items()}}
    return entry


def changes(recorded, current):
    """Why `current` differs from `recorded` ({path: entry} each), one short phrase per change."""
    out = []
    for path in current:
        old, new = recorded.get(path), current[path]
        if old is None:
            out.append(f"{path} is a new input")
        elif _strip(old) == _strip(new):
            continue
        elif new["kind"] == "absent":
            out.append(f"{path} no longer exists")
        elif old.get("kind") != new["kind"]:
            out.append(f"{path} was created" if old.get("kind") == "absent" else f"{path} changed kind")
        elif new["kind"] == "file":
            out.append(f"{path} changed")
        elif new["kind"] == "tree":
            out.extend(_tree_changes(path[len(TREE):], old["groups"], new["groups"]))
        else:
            out.extend(_dir_changes(path, old, new))
    out.extend(f"{path} is no longer an input" for path in recorded if path not in current)
    return out


def _dir_changes(path, old, new):
    of, nf = old["files"], new["files"]
    out = [f"{path}/{rel} changed" for rel in sorted(nf) if rel in of and of[rel]["sha256"] != nf[rel]["sha256"]]
    out += [f"{path}/{rel} was added" for rel in sorted(set(nf) - set(of))]
    out += [f"{path}/{rel} was removed" for rel in sorted(set(of) - set(nf))]
    for name, sig in new.get("listed", {}).items():
        if (old.get("listed") or {}).get(name) != sig:
            out.append(f"files listed in {path}/{name} changed (size or modification time)")
    return out or [f"{path} changed"]


def _tree_changes(root, old, new):
    out = [f"{root}/{g}: files changed, added or removed (size or modification time)"
           for g in sorted(new) if g in old and old[g] != new[g]]
    out += [f"{root}/{g} was added" for g in sorted(set(new) - set(old))]
    out += [f"{root}/{g} was removed" for g in sorted(set(old) - set(new))]
    return out


def rescan_trees(inputs):
    """`inputs` with its trees described as they are now: a stage that fills its own input tree
    (stage 1's downloads) is recorded with what it left there."""
    return {p: describe(p) if p.startswith(TREE) else e for p, e in inputs.items()}


def read_marker(path):
    """The marker's {"options", "inputs"}; None when there is none; {"legacy": text} for a marker
    written before inputs were recorded (the options only, as plain text)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    try:
        marker = json.loads(text)
    except ValueError:
        return {"legacy": text.rstrip("\n")}
    if not isinstance(marker, dict) or marker.get("version") != MARKER_VERSION:
        return {"legacy": text.rstrip("\n")}
    return marker


def make_marker(options, inputs):
    return {"version": MARKER_VERSION, "options": options, "inputs": inputs}


def compare(marker, options, paths):
    """(option reasons, input reasons, current inputs): none means the stage ran with these
    options on inputs of the same content. The current inputs are what the stage reads now;
    record them when it ends."""
    recorded = (marker or {}).get("inputs") or {}
    current = manifest(paths, recorded)
    if marker is None:
        return ["it has not run here yet"], [], current
    if "legacy" in marker:
        return ["its marker predates input digests (it recorded options only)"], [], current
    reasons = []
    if marker.get("options") != options:
        reasons.append(f"its options changed since it ran (were: {marker.get('options')})")
    return reasons, changes(recorded, current), current


def write_marker(path, options, inputs):
    atomic_write_text(path, json.dumps(make_marker(options, inputs), indent=1, sort_keys=True) + "\n")


def check_marker(path, options, paths, legacy=None):
    """compare() for the stage whose done marker is `path`. A marker written before
    inputs were recorded is taken as done when it holds `legacy` (the options string of that
    time), and rewritten with the current inputs, so that an upgrade reruns nothing."""
    marker = read_marker(path)
    if marker is not None and "legacy" in marker and legacy is not None and marker["legacy"] == legacy:
        current = manifest(paths)
        write_marker(path, options, current)
        return [], [], current
    return compare(marker, options, paths)
