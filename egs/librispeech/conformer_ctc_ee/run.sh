#!/usr/bin/env bash
# Early-exit Conformer-CTC (exits every 2 of 12 layers, a CTC head each), trained from scratch with the joint loss, on librispeech.
set -euo pipefail

./asr.sh \
  --train-set train --valid-set dev --test-sets "test_clean test_other" --local-data-opts "--train 960" \
  --nbpe 300 \
  --feats-type fbank_online --speed-perturb-factors "0.9 1.0 1.1" \
  --train-config conf/train_conformer_ctc_ee.yaml \
  "$@"
