#!/usr/bin/env bash
# Single-exit Conformer-CTC baselines on mini_tts: the early-exit demo's config and schedule (linked), one
# model per depth trained with its last layer's loss alone (see single_exit.sh).
set -euo pipefail

./single_exit.sh \
  --train-set train --valid-set dev --test-sets "test" --exit-classifier-set dev_unseen \
  --nbpe 1000 \
  --train-config conf/train_conformer_ctc_single.yaml \
  "$@"
