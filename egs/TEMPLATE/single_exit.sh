#!/usr/bin/env bash
# Single-exit baselines: one model per depth L, trained with the last layer's loss alone (the
# recipe's config otherwise; num_blocks becomes L). Each keeps untrained exits every 2 layers
# below L that share its one head (loss weight 0: they change nothing in training), so the model
# is also the paper's "trained without early-exit losses", evaluated at every exit.
#   ./single_exit.sh [--depths "2 4 6 8 10 12"] [asr.sh options]   (stages 1-3 run once)
set -euo pipefail
depths="2 4 6 8 10 12"
extra=""  # --train-args given by the user, added to the per-depth ones
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --depths) depths=$2; shift 2 ;;
    --train-args|--train_args) extra=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
config=""
for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[i]}" != --train-config ] || config=${args[i + 1]:-}; done
for L in $depths; do
  exits=$(seq -s, 2 2 "$L"); [ $((L % 2)) -eq 0 ] || exits="${exits:+$exits,}$L"
  weights=$(echo "$exits" | awk -F, '{for (i = 1; i < NF; i++) printf "0,"; print 1}')
  # a per-block stochastic depth list keeps each block's rate: its first L entries
  depth_rates=$(python3 -c 'import sys, yaml
r = (yaml.safe_load(open(sys.argv[1])) or {}).get("encoder_conf", {}).get("stochastic_depth_rate")
print("[" + ",".join(map(str, r[:int(sys.argv[2])])) + "]" if isinstance(r, list) else "")' "$config" "$L")
  ./asr.sh --tag-suffix "_depth${L}" --policy-grid "" \
    --train-args "--set encoder_conf.num_blocks=$L --set encoder_conf.exit_layers=[$exits]${depth_rates:+ --set encoder_conf.stochastic_depth_rate=$depth_rates} --set model_conf.shared_head=true --set model_conf.exit_weighting=[$weights]${extra:+ $extra}" \
    "${args[@]}"
done
