#!/usr/bin/env bash
# utils/split_scp.sh IN N OUT_PREFIX: split IN into OUT_PREFIX.1 .. OUT_PREFIX.N, contiguous,
# in order and balanced, so sorted input gives sorted parts of near-equal size.
set -euo pipefail
in=$1; n=$2; out=$3
total=$(wc -l < "$in")
[ "$total" -ge "$n" ] || { echo "$0: $in has $total lines, fewer than $n parts" >&2; exit 1; }
awk -v n="$n" -v t="$total" -v out="$out" '{ print > (out "." (int((NR - 1) * n / t) + 1) ".tmp") }' "$in"
for ((j = 1; j <= n; j++)); do mv "$out.$j.tmp" "$out.$j"; done
