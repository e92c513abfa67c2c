#!/usr/bin/env bash
# utils/run_logged.sh LOG CMD ARGS...: run one job of a job runner (run_local.sh, run_slurm.sh)
# with its output in LOG, which starts with the command and ends with its exit status; exits with
# the command's status. $RUN_WHERE, if set, is added to the start line (host, Slurm job).
set -u
log=$1; shift
{
  echo "# $(printf '%q ' "$@")"
  echo "# started at $(date)${RUN_WHERE:+ $RUN_WHERE}"
  start=$(date +%s)
  # in the background and waited for, so that a SIGTERM is handled at once: passed on to the
  # command (in case it came to this shell alone) and logged
  "$@" &
  child=$!
  trap 'trap "" TERM INT; kill -TERM "$child" 2>/dev/null; wait "$child"
        echo "# interrupted at $(date), elapsed $(( $(date +%s) - start ))s: stopped by a signal"; exit 143' TERM INT
  wait "$child"
  rc=$?
  echo "# ended (exit $rc) at $(date), elapsed $(( $(date +%s) - start ))s"
} > "$log" 2>&1  # a brace group, not a subshell: rc is still set below
exit "$rc"
