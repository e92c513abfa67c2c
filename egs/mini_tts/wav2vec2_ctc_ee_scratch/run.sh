#!/usr/bin/env bash
# Early-exit Wav2Vec2-CTC on the raw waveform, trained from scratch with the joint loss, on mini_tts.
set -euo pipefail

./asr.sh \
  --train-set train --valid-set dev --test-sets "test" --local-data-opts "--size demo" \
  --feats-type raw --token-type char \
  --train-config conf/train.yaml \
  "$@"
