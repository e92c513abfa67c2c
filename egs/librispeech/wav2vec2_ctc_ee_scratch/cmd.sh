# Job runners for the recipe's parallel steps. Both take the same arguments:
#   $train_cmd JOB=1:N log/x.JOB.log command ...
# Local machine (default):
export train_cmd="utils/run_local.sh"
export decode_cmd="utils/run_local.sh"
# Slurm cluster: uncomment, and put partition/account flags in SLURM_EXTRA_OPTS.
# export train_cmd="utils/run_slurm.sh --mem 8G"
# export decode_cmd="utils/run_slurm.sh --mem 4G"
