#!/usr/bin/env bash
# Run a command as N parallel jobs on this machine, run.pl style:
#   utils/run_local.sh [--max-jobs-run K] [--mem X] [--num-threads N] [--gpu G] [--time T] \
#       JOB=1:N log/name.JOB.log cmd args...
# Every JOB in the log path (file name or directories) and in the arguments becomes the job
# number; nothing else in the arguments is touched: they reach the command as given (no shell
# evaluates them, so `a"b` and `c$HOME` stay literal; use `bash -c '...'` for a pipeline).
# Each job's output goes to its log, which starts with the command and ends with its exit
# status. Exits non-zero naming the failed jobs and their logs if any job fails. SIGINT and
# SIGTERM stop every job (see interrupted below).
set -u
max_jobs=0
while [ $# -gt 0 ]; do
  case "$1" in
    --max-jobs-run) max_jobs=$2; shift 2 ;;
    --mem|--num-threads|--gpu|--time|--num-nodes) shift 2 ;;  # resources matter only to a cluster backend
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
if [ -n "$var" ] && [ "$first" -lt "$last" ] && [[ "$logtmpl" != *"$var"* ]]; then
  echo "$0: the log path $logtmpl must contain $var: jobs $first-$last would share one log" >&2; exit 1
fi
logged="$(dirname "$0")/run_logged.sh"
pids=(); logs=(); tasks=()
# Each job runs in a session of its own (setsid: its pid is its process group), so that a signal
# reaches all of it, its children too: jobs started with & by a script ignore SIGINT, so Ctrl-C
# (or a SIGTERM to this runner) is passed on to every job's group as SIGTERM, each job's log ends
# with "# interrupted", and this runner exits 130 (143) once they have stopped.
interrupted() {
  trap '' INT TERM
  echo "$0: interrupted by SIG$1: stopping ${#pids[@]} job(s); their logs end with '# interrupted'" >&2
  local pid
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; done
  wait
  exit "$2"
}
trap 'interrupted INT 130' INT
trap 'interrupted TERM 143' TERM
for ((j = first; j <= last; j++)); do
  log=$logtmpl; args=("$@")
  if [ -n "$var" ]; then log=${log//$var/$j}; args=("${args[@]//$var/$j}"); fi
  mkdir -p "$(dirname "$log")" || { echo "$0: cannot make the log dir of $log" >&2; exit 1; }
  setsid "$logged" "$log" "${args[@]}" &
  pids+=($!); logs+=("$log"); tasks+=("$j")
  if [ "$max_jobs" -gt 0 ] && [ "$(jobs -rp | wc -l)" -ge "$max_jobs" ]; then wait -n || true; fi
done
failed=(); failed_logs=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { failed+=("${tasks[$i]}"); failed_logs+=("${logs[$i]}"); }
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "$0: ${#failed[@]} of $((last - first + 1)) jobs failed: ${var:-JOB}=$(IFS=,; echo "${failed[*]}");" \
       "see ${failed_logs[*]}" >&2
  for f in "${failed_logs[@]}"; do tail -n 5 "$f" | sed "s|^|  $f: |" >&2; done
  exit 1
fi
