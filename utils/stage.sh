#!/usr/bin/env bash
# Stage bookkeeping: a stage is done when <dir>/.stage<N>.done holds the options it ran with.
# stage_skip N DIR OPTS             -> success (skip) when the stage is done with the same options.
# stage_begin N DIR OPTS [PATH...]  -> record OPTS as in progress and PATHs (files or dirs,
#                                      relative to the recipe) as the outputs this run writes.
#                                      When an interrupted run of the stage had other options,
#                                      the outputs *that run* declared are removed first, and
#                                      nothing else: a stage's directory is shared (data/ holds
#                                      stage 3's token_list, dump/<train> the cmvn.npz a trained
#                                      model reads), so emptying it would lose other stages' work.
# stage_output N DIR PATH...        -> declare more outputs while the stage runs (before writing them).
# stage_end N DIR OPTS              -> write the done marker atomically.
stage_skip() {
  [ -f "$2/.stage$1.done" ] && [ "$(cat "$2/.stage$1.done")" = "$3" ]
}
# A declared output must be a path strictly below the recipe directory: never absolute, never
# '..', never the directory itself, so that a bad declaration cannot remove anything outside.
__stage_check_path() {
  local rel
  [ -n "$1" ] || { echo "stage bookkeeping: refusing an empty output path" >&2; return 1; }
  # -s: lexically, without following links: data/ may link to the corpus's shared data dir
  rel=$(realpath -m -s --relative-to=. -- "$1")
  case "$1|$rel" in
    /*|*"|."|*"|.."|*"|../"*) echo "stage bookkeeping: refusing output path '$1' (must be relative, below the recipe)" >&2
                             return 1 ;;
  esac
}
stage_output() {
  local n=$1 dir=$2 p; shift 2
  for p in "$@"; do
    __stage_check_path "$p" || return 1
    printf '%s\n' "$p" >> "$dir/.stage$n.outputs"
  done
}
stage_begin() {
  local n=$1 dir=$2 opts=$3 p; shift 3
  if [ -f "$dir/.stage$n.running" ] && [ "$(cat "$dir/.stage$n.running")" != "$opts" ]; then
    if [ -s "$dir/.stage$n.outputs" ]; then
      echo "stage $n: options changed since an interrupted run; removing that run's outputs:" \
           "$(tr '\n' ' ' < "$dir/.stage$n.outputs")" >&2
      while IFS= read -r p; do
        __stage_check_path "$p" && rm -rf -- "$p"
      done < "$dir/.stage$n.outputs"
    else
      echo "stage $n: options changed since an interrupted run, which declared no outputs; removing nothing" >&2
    fi
  fi
  rm -f "$dir/.stage$n.done" "$dir/.stage$n.outputs"
  mkdir -p "$dir"
  printf '%s\n' "$opts" > "$dir/.stage$n.running"
  : > "$dir/.stage$n.outputs"
  [ $# -eq 0 ] || stage_output "$n" "$dir" "$@"
}
stage_end() {
  printf '%s\n' "$3" > "$2/.stage$1.done.tmp" && mv "$2/.stage$1.done.tmp" "$2/.stage$1.done"
  rm -f "$2/.stage$1.running" "$2/.stage$1.outputs"
}
