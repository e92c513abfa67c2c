#!/usr/bin/env bash
# Early-exit Conformer-CTC (exits every 2 of 12 layers, joint loss) on the synthetic mini corpus.
# Trains on a 2-core CPU in about 20 minutes; `--local-data-opts "--size tiny"` for a smoke test.
set -euo pipefail

./asr.sh \
  --train-set train \
  --valid-set dev \
  --test-sets "test" \
  --nbpe 300 \
  --train-config conf/train.yaml \
  --local-data-opts "--size demo" \
  "$@"
