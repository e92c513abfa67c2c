"""Stage bookkeeping for utils/stage.sh: input digests in done markers, content-addressed shared
artefacts and directory locks taken on behalf of the stage script.

  check  --marker M --stage N --options O [--legacy L] [--refuse-changes] [--refuse-option-changes] INPUT...
         INPUT: a file or directory, by content; tree:DIR, every file below DIR by size and mtime
         (a corpus as downloaded: never read).
         exit 0: done with these options on inputs of the same content (skip); 1: run it (the
         reasons on stderr; the current inputs saved beside M for `record`); 3: refused
         (--refuse-changes: it ran on other inputs and must not be redone in place;
         --refuse-option-changes: it ran with other options)
  record --marker M --options O      write M with the inputs `check` saved (trees as they are now)
  publish --store DIR --main FILE NEW_DIR   NEW_DIR's files become DIR/<sha12>/, DIR/current
  lock DIR --what W --pid P / unlock DIR --pid P
"""

import argparse
import json
import sys
from pathlib import Path

from ee_asr.common.artefacts import publish
from ee_asr.common.atomic import atomic_write_text
from ee_asr.common.cli import run_main, setup_logging
from ee_asr.common.lock import DirLock
from ee_asr.common.stage_inputs import check_marker, read_marker, rescan_trees, write_marker

STAGE_LOCK = ".stage.lock"
REFUSED = 3


def pending_path(marker):
    marker = Path(marker)
    return marker.with_name(marker.name.replace(".done", "") + ".inputs")


def check(args):
    existed = read_marker(args.marker) is not None
    option_reasons, input_reasons, current = check_marker(args.marker, args.options, args.inputs,
                                                         legacy=args.legacy)
    if not option_reasons and not input_reasons:
        return 0
    if existed and args.refuse_changes and input_reasons:
        print(f"Stage {args.stage} ({Path(args.marker).parent}) ran on other inputs: "
              + "; ".join(f"{r} since stage {args.stage} ran" for r in input_reasons), file=sys.stderr)
        return REFUSED
    if existed:
        for r in option_reasons:
            print(f"Stage {args.stage}: {r}", file=sys.stderr)
    if existed and args.refuse_option_changes and option_reasons:
        return REFUSED
    atomic_write_text(pending_path(args.marker), json.dumps(current) + "\n")
    if existed:
        for r in input_reasons:
            print(f"Stage {args.stage}: {r} since stage {args.stage} ran", file=sys.stderr)
    return 1


def record(args):
    pending = pending_path(args.marker)
    inputs = json.loads(pending.read_text()) if pending.is_file() else {}
    write_marker(args.marker, args.options, rescan_trees(inputs))
    pending.unlink(missing_ok=True)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("--marker", required=True)
    c.add_argument("--stage", required=True)
    c.add_argument("--options", required=True)
    c.add_argument("--legacy", help="the options line a marker of before input digests would hold")
    c.add_argument("--refuse-changes", action="store_true")
    c.add_argument("--refuse-option-changes", action="store_true")
    c.add_argument("inputs", nargs="*")
    r = sub.add_parser("record")
    r.add_argument("--marker", required=True)
    r.add_argument("--options", required=True)
    u = sub.add_parser("publish")
    u.add_argument("--store", required=True)
    u.add_argument("--main", required=True)
    u.add_argument("new_dir")
    lk = sub.add_parser("lock")
    lk.add_argument("dir")
    lk.add_argument("--what", required=True)
    lk.add_argument("--pid", type=int, required=True)
    ul = sub.add_parser("unlock")
    ul.add_argument("dir")
    ul.add_argument("--pid", type=int, required=True)
    args = p.parse_args(argv)
    setup_logging()
    if args.command == "check":
        return check(args)
    if args.command == "record":
        return record(args)
    if args.command == "publish":
        print(publish(args.new_dir, args.store, args.main))
        return 0
    lock = DirLock(args.dir, getattr(args, "what", ""), name=STAGE_LOCK, pid=args.pid)
    if args.command == "lock":
        lock.acquire()
    else:
        lock.held = True
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
