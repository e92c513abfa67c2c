#!/usr/bin/env bash
# The run_local.sh interface on a Slurm cluster: one array job, waited for with sbatch --wait.
#   utils/run_slurm.sh [--mem X] [--num-threads N] [--gpu G] [--time T] [--max-jobs-run K] \
#       JOB=1:N log/name.JOB.log cmd args...
# --num-threads N asks for N cores per task (--cpus-per-task), --gpu G for G GPUs (--gres=gpu:G),
# --time T for a time limit; extra sbatch flags (partition, account, qos) come from
# $SLURM_EXTRA_OPTS, e.g. SLURM_EXTRA_OPTS="--partition gpu --account myproj".
# As with run_local.sh, JOB may appear anywhere in the log path and in the arguments, and the
# arguments reach the command literally: they are written into the job script quoted, and JOB
# is replaced inside the job by the array task id, so no shell evaluates them a second time.
# The job runs in the current directory with the current environment (sbatch's default
# --export=ALL), so the directory must be on a filesystem that every node sees.
set -u
sbatch_opts=()
max_jobs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --mem) sbatch_opts+=("--mem=$2"); shift 2 ;;
    --num-threads) sbatch_opts+=("--cpus-per-task=$2"); shift 2 ;;
    --gpu) [ "$2" -gt 0 ] && sbatch_opts+=("--gres=gpu:$2"); shift 2 ;;
    --time) sbatch_opts+=("--time=$2"); shift 2 ;;
    --num-nodes) sbatch_opts+=("--nodes=$2"); shift 2 ;;
    --max-jobs-run) max_jobs=$2; shift 2 ;;
    *) break ;;
  esac
done
if [[ $# -lt 2 ]]; then
  echo "usage: $0 [options] [JOB=1:N] <log> <command...>" >&2; exit 1
fi
command -v sbatch >/dev/null || { echo "$0: sbatch not found: is this a Slurm cluster? (cmd.sh picks the runner)" >&2; exit 1; }
first=1; last=1; var=""
if [[ "$1" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}; shift
  [ "$first" -le "$last" ] || { echo "$0: empty range $first:$last" >&2; exit 1; }
fi
logtmpl=$1; shift
if [ -n "$var" ] && [ "$first" -lt "$last" ] && [[ "$logtmpl" != *"$var"* ]]; then
  echo "$0: the log path $logtmpl must contain $var: jobs $first-$last would share one log" >&2; exit 1
fi
# Slurm's own files (the job script, its stdout, each task's exit status) go to a fixed directory:
# the part of the log path before any JOB, so that JOB may name directories too.
fixed=$logtmpl; [ -n "$var" ] && fixed=${logtmpl%%"$var"*}
case "$fixed" in */*) qdir="${fixed%/*}/q" ;; *) qdir=q ;; esac
name=$(basename "$logtmpl"); name=${name//[^A-Za-z0-9_.-]/_}
mkdir -p "$qdir" || { echo "$0: cannot make $qdir" >&2; exit 1; }
script="$qdir/$name.sh"
for ((j = first; j <= last; j++)); do rm -f "$qdir/$name.$j.rc"; done
{
  echo "#!/usr/bin/env bash"
  echo "cd $(printf '%q' "$PWD") || exit 1"
  echo "var=$(printf '%q' "$var"); task=\${SLURM_ARRAY_TASK_ID:-$first}"
  echo "log=$(printf '%q' "$logtmpl"); args=($(printf '%q ' "$@"))"
  echo "rcfile=$(printf '%q' "$qdir/$name").\$task.rc"
  echo "logged=$(printf '%q' "$(cd "$(dirname "$0")" && pwd)/run_logged.sh")"
  cat <<'SCRIPT'
if [ -n "$var" ]; then log=${log//$var/$task}; args=("${args[@]//$var/$task}"); fi
mkdir -p "$(dirname "$log")" || { echo 127 > "$rcfile"; exit 1; }
RUN_WHERE="on $(hostname) (Slurm job ${SLURM_JOB_ID:-?}, task $task)" "$logged" "$log" "${args[@]}"
rc=$?
echo "$rc" > "$rcfile"
exit "$rc"
SCRIPT
} > "$script"
array="$first-$last${max_jobs:+%$max_jobs}"
# Waited for in the background, so that Ctrl-C (or SIGTERM) here cancels the array at once: its
# tasks get SIGTERM from Slurm and their logs end with "# interrupted"; this runner exits 130 (143).
interrupted() {
  trap '' INT TERM
  local id; id=$(head -n 1 "$qdir/$name.jobid" 2>/dev/null | cut -d';' -f1)
  echo "$0: interrupted by SIG$1: cancelling Slurm job ${id:-(not submitted yet)}" >&2
  [ -z "$id" ] || scancel "$id" || echo "$0: scancel $id failed: cancel it by hand" >&2
  kill "$sbatch_pid" 2>/dev/null; wait
  exit "$2"
}
rm -f "$qdir/$name.jobid"
# shellcheck disable=SC2086
sbatch --wait --parsable --array="$array" --job-name="$name" --output="$qdir/$name.%A_%a.out" \
  ${SLURM_EXTRA_OPTS:-} "${sbatch_opts[@]}" "$script" > "$qdir/$name.jobid" &
sbatch_pid=$!
trap 'interrupted INT 130' INT
trap 'interrupted TERM 143' TERM
wait "$sbatch_pid"
sbatch_rc=$?
trap - INT TERM
failed=(); failed_logs=()
for ((j = first; j <= last; j++)); do
  rc=$(cat "$qdir/$name.$j.rc" 2>/dev/null)
  if [ "${rc:-none}" != 0 ]; then
    failed+=("$j"); log=$logtmpl; [ -n "$var" ] && log=${log//$var/$j}; failed_logs+=("$log")
  fi
done
if [ ${#failed[@]} -gt 0 ] || [ $sbatch_rc -ne 0 ]; then
  echo "$0: ${#failed[@]} of $((last - first + 1)) jobs failed: ${var:-JOB}=$(IFS=,; echo "${failed[*]}");" \
       "see ${failed_logs[*]:-} (Slurm job $(cat "$qdir/$name.jobid" 2>/dev/null), its output in $qdir)" >&2
  for f in "${failed_logs[@]}"; do
    [ -f "$f" ] && tail -n 5 "$f" | sed "s|^|  $f: |" >&2
  done
  exit 1
fi
