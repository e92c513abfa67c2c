#!/usr/bin/env bash
# Early-exit Wav2Vec2-CTC on the raw waveform, trained from scratch with the joint loss, on an4.
set -euo pipefail

./asr.sh \
  --train-set train --valid-set dev --test-sets "test" \
  --feats-type raw_online --token-type char \
  --speed-perturb-factors "0.9 1.0 1.1" \
  --train-config conf/train_wav2vec2_ctc_ee_scratch.yaml \
  "$@"
