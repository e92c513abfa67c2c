# Job runners for the recipe's parallel steps. Both take the same arguments:
#   $train_cmd [--num-threads N] [--gpu G] [--mem X] [--time T] JOB=1:N log/x.JOB.log command ...
# $train_cmd runs feature extraction (stage 2, --nj jobs) and training (stage 4: one job with
# --num-procs cores, and --num-procs GPUs with --device cuda); $decode_cmd runs decoding (stage 5,
# --decode-nj jobs per test set, one GPU each with --device cuda). JOB may appear anywhere in the
# log path; the command's arguments are passed literally.
#
# Local machine (default): jobs run here, in parallel.
export train_cmd="utils/run_local.sh"
export decode_cmd="utils/run_local.sh"
#
# Slurm cluster: each call becomes one array job (sbatch --array=1-N --wait); --num-threads maps
# to --cpus-per-task, --gpu to --gres=gpu:G, --mem to --mem, --time to --time. Partition, account
# and QOS go in SLURM_EXTRA_OPTS. The recipe directory (data, dump, exp) must be on a filesystem
# every node mounts at the same path, since jobs read and write it where they run. For example:
# export SLURM_EXTRA_OPTS="--partition gpu --account myproject"
# export train_cmd="utils/run_slurm.sh --mem 16G --time 2-00:00:00"
# export decode_cmd="utils/run_slurm.sh --mem 8G --time 4:00:00"
