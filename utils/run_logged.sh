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
  "$@"
  rc=$?
  echo "# ended (exit $rc) at $(date), elapsed $(( $(date +%s) - start ))s"
} > "$log" 2>&1  # a brace group, not a subshell: rc is still set below
exit "$rc"
