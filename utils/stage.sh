#!/usr/bin/env bash
# Stage bookkeeping: a stage is done when <dir>/.stage<N>.done records the options it ran with and
# the digests of the inputs it read (ee_asr/common/stage_inputs.py: files by content, a data or
# dump dir by its files, the audio or archives its wav.scp/feats.scp lists by size and mtime;
# tree:DIR, a corpus as downloaded, by its files' sizes and mtimes as the stage leaves it).
# stage_skip N DIR OPTS [INPUT...]  -> 0: done with the same options on inputs of the same content
#                                      (skip); 1: run it, saying what changed since it ran; 3 (only
#                                      with stage_refuse_changes=1): it ran on other inputs and must
#                                      not be redone in place; or with stage_refuse_option_changes=1:
#                                      it ran with other options. stage_legacy="OPTS" accepts a marker
#                                      written before inputs were recorded that holds those options.
# stage_begin N DIR OPTS [PATH...]  -> record OPTS as in progress and PATHs (files or dirs,
#                                      relative to the recipe) as the outputs this run writes.
#                                      When an interrupted run of the stage had other options,
#                                      the outputs *that run* declared are removed first, and
#                                      nothing else: a stage's directory is shared (data/ holds
#                                      stage 3's token_list, dump/<train> the cmvn a trained
#                                      model reads), so emptying it would lose other stages' work.
# stage_output N DIR PATH...        -> declare more outputs while the stage runs (before writing them).
# stage_end N DIR OPTS              -> write the done marker (options and the inputs stage_skip saw).
# stage_lock DIR WHAT / stage_unlock DIR -> hold DIR/.stage.lock for this script (pid $$): another
#                                      run refuses, naming this one, before it removes anything.
#                                      Take it before stage_skip and stage_begin. stage_traps
#                                      releases held locks at exit and logs an interrupted stage.
stage_skip() {
  local n=$1 dir=$2 opts=$3; shift 3
  local rc=0
  python -m ee_asr.bin.stage_state check --marker "$dir/.stage$n.done" --stage "$n" --options "$opts" \
    ${stage_legacy+--legacy "$stage_legacy"} ${stage_refuse_changes:+--refuse-changes} \
    ${stage_refuse_option_changes:+--refuse-option-changes} -- "$@" || rc=$?
  [ "$rc" -ne 2 ] || exit 2  # it could not read an input: the error is on stderr
  return "$rc"
}
__stage_locks=()
__stage_current=""
stage_lock() {
  python -m ee_asr.bin.stage_state lock "$1" --what "$2 ($0)" --pid $$ || return 1
  __stage_locks+=("$1"); __stage_current=$2
}
stage_unlock() {
  local d kept=()
  python -m ee_asr.bin.stage_state unlock "$1" --pid $$
  for d in "${__stage_locks[@]}"; do [ "$d" = "$1" ] || kept+=("$d"); done
  __stage_locks=("${kept[@]}"); __stage_current=""
}
__stage_release_all() {
  local d
  for d in "${__stage_locks[@]}"; do python -m ee_asr.bin.stage_state unlock "$d" --pid $$ || true; done
  __stage_locks=()
}
__stage_interrupted() {
  echo "$(date '+%Y-%m-%dT%H:%M:%S') ($0) interrupted by SIG$1${__stage_current:+ during $__stage_current}:" \
       "its jobs were stopped; rerun the same command to continue" >&2
  exit "$2"
}
stage_traps() {
  trap __stage_release_all EXIT
  trap '__stage_interrupted INT 130' INT
  trap '__stage_interrupted TERM 143' TERM
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
  python -m ee_asr.bin.stage_state record --marker "$2/.stage$1.done" --options "$3" || return 1
  rm -f "$2/.stage$1.running" "$2/.stage$1.outputs"
}
