#!/usr/bin/env bash
# A stand-in job runner for tests: `record_args.sh FILE <runner args...>` writes its arguments to
# FILE, one a line, and runs nothing.
out=$1; shift
printf '%s\n' "$@" > "$out"
