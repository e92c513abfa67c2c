#!/usr/bin/env bash
# Single-exit Conformer-CTC baselines, one model per depth (see single_exit.sh), on mini_tts.
set -euo pipefail

./single_exit.sh \
  --train-set train --valid-set dev --test-sets "test" \
  --nbpe 300 \
  --train-config conf/train_conformer_ctc_single.yaml \
  "$@"
