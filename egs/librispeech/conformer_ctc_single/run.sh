#!/usr/bin/env bash
# Single-exit Conformer-CTC baselines, one model per depth (see single_exit.sh), on librispeech.
set -euo pipefail

./single_exit.sh \
  --train-set train --valid-set dev --test-sets "test_clean test_other" --local-data-opts "--train 960" \
  --nbpe 300 \
  --feats-type fbank_online --speed-perturb-factors "0.9 1.0 1.1" \
  --train-config conf/train_conformer_ctc_ee.yaml \
  "$@"
