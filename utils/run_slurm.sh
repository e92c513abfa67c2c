#!/usr/bin/env bash
# The run_local.sh interface on a Slurm cluster: one array job, waited for with sbatch --wait.
#   utils/run_slurm.sh [--mem X] [--num-threads N] [--gpu G] [--time T] JOB=1:N log/name.JOB.log cmd args...
# Extra sbatch flags (partition, account) come from $SLURM_EXTRA_OPTS.
set -u
sbatch_opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mem) sbatch_opts+=("--mem=$2"); shift 2 ;;
    --num-threads) sbatch_opts+=("--cpus-per-task=$2"); shift 2 ;;
    --gpu) [ "$2" -gt 0 ] && sbatch_opts+=("--gres=gpu:$2"); shift 2 ;;
    --time) sbatch_opts+=("--time=$2"); shift 2 ;;
    --max-jobs-run) max_jobs=$2; shift 2 ;;
    *) break ;;
  esac
done
first=1; last=1; var=""
if [[ "$1" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}; shift
fi
logtmpl=$1; shift
cmd=$(printf '%q ' "$@")
[ -n "$var" ] && cmd=${cmd//$var/\$SLURM_ARRAY_TASK_ID} && logtmpl=${logtmpl//$var/%a}
logdir=$(dirname "$logtmpl"); mkdir -p "$logdir/q"
script="$logdir/q/$(basename "${logtmpl//%a/array}").sh"
cat > "$script" <<SCRIPT
#!/usr/bin/env bash
cd "$PWD"
echo "# $cmd"
bash -c "$cmd"
rc=\$?
echo "# ended (exit \$rc) at \$(date)"
exit \$rc
SCRIPT
array="$first-$last${max_jobs:+%$max_jobs}"
# shellcheck disable=SC2086
sbatch --wait --array="$array" --output="$logtmpl" ${SLURM_EXTRA_OPTS:-} "${sbatch_opts[@]}" "$script" || {
  echo "$0: some of jobs $first-$last failed; see ${logtmpl//%a/*}" >&2; exit 1; }
