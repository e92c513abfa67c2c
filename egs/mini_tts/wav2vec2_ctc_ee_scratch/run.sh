#!/usr/bin/env bash
# Early-exit Wav2Vec2-CTC on the raw waveform, trained from scratch with the joint loss, on mini_tts.
set -euo pipefail

./asr.sh \
  --train-set train --valid-set dev --test-sets "test" --exit-classifier-set dev_unseen \
  --feats-type raw --nbpe 1000 \
  --train-config conf/train_wav2vec2_ctc_ee_scratch.yaml \
  "$@"
