#!/usr/bin/env bash
# Run a command as N parallel jobs on this machine, run.pl style:
#   utils/run_local.sh [--max-jobs-run K] [--mem X] [--num-threads N] JOB=1:N log/name.JOB.log cmd args...
# Every JOB in the log name and the command becomes the job number. Each job's output goes to
# its log, which starts with the command and ends with its exit status. Exits non-zero,
# naming the failed logs, if any job fails.
set -u
max_jobs=0
while [ $# -gt 0 ]; do
  case "$1" in
    --max-jobs-run) max_jobs=$2; shift 2 ;;
    --mem|--num-threads|--gpu|--time) shift 2 ;;  # resources matter only to a cluster backend
    *) break ;;
  esac
done
if [[ $# -lt 2 ]]; then
  echo "usage: $0 [options] [JOB=1:N] <log> <command...>" >&2; exit 1
fi
first=1; last=1; var=""
if [[ "$1" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}; shift
  [ "$first" -le "$last" ] || { echo "$0: empty range $first:$last" >&2; exit 1; }
fi
logtmpl=$1; shift
cmd=$(printf '%q ' "$@")
pids=(); logs=()
for ((j = first; j <= last; j++)); do
  log=$logtmpl; jcmd=$cmd
  if [ -n "$var" ]; then log=${log//$var/$j}; jcmd=${jcmd//$var/$j}; fi
  mkdir -p "$(dirname "$log")"
  (
    echo "# $jcmd"
    echo "# started at $(date)"
    start=$(date +%s)
    bash -c "$jcmd"
    rc=$?
    echo "# ended (exit $rc) at $(date), elapsed $(( $(date +%s) - start ))s"
    exit $rc
  ) > "$log" 2>&1 &
  pids+=($!); logs+=("$log")
  if [ "$max_jobs" -gt 0 ] && [ "${#pids[@]}" -ge "$max_jobs" ]; then wait -n || true; fi
done
failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${logs[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "$0: ${#failed[@]} of $((last - first + 1)) jobs failed; see ${failed[*]}" >&2
  for f in "${failed[@]}"; do tail -n 5 "$f" | sed "s|^|  $f: |" >&2; done
  exit 1
fi
