#!/usr/bin/env bash
# Early-exit Conformer-AED (a CTC head and a Transformer decoder per exit; 0.3*CTC + 0.7*CE), from scratch, on librispeech.
set -euo pipefail

./asr.sh \
  --train-set train --valid-set dev --test-sets "test_clean test_other" --local-data-opts "--train 960" \
  --nbpe 300 --decode-args "--beam-size 5 --ctc-weight 0.3" --nbest-size 5 \
  --feats-type fbank_online --speed-perturb-factors "0.9 1.0 1.1" \
  --train-config conf/train_conformer_aed_ee.yaml \
  "$@"
