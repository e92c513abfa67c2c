#!/usr/bin/env bash
# Stage bookkeeping: a stage is done when <dir>/.stage<N>.done holds the options it ran with.
# stage_skip N DIR OPTS  -> success (skip) when the stage is done with the same options.
# stage_begin N DIR OPTS -> record OPTS as in progress; when an interrupted run of the stage had
#                           other options, its partial outputs in DIR are removed first.
# stage_end N DIR OPTS   -> write the done marker atomically.
stage_skip() {
  [ -f "$2/.stage$1.done" ] && [ "$(cat "$2/.stage$1.done")" = "$3" ]
}
stage_begin() {
  local n=$1 dir=$2 opts=$3
  if [ -f "$dir/.stage$n.running" ] && [ "$(cat "$dir/.stage$n.running")" != "$opts" ]; then
    echo "stage $n: options changed since an interrupted run; removing its partial outputs in $dir" >&2
    find "$dir" -mindepth 1 -maxdepth 1 ! -name ".stage*" -exec rm -rf {} +
  fi
  rm -f "$dir/.stage$n.done"
  mkdir -p "$dir"
  printf '%s\n' "$opts" > "$dir/.stage$n.running"
}
stage_end() {
  printf '%s\n' "$3" > "$2/.stage$1.done.tmp" && mv "$2/.stage$1.done.tmp" "$2/.stage$1.done"
  rm -f "$2/.stage$1.running"
}
