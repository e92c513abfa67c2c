#!/usr/bin/env bash
# Early-exit fine-tuning of a pre-trained Wav2Vec2 (--pretrained DIR, Hugging Face format), on librispeech.
# PRETRAINED=DIR (or --pretrained DIR): a Hugging Face Wav2Vec2 dir, e.g. from
#   huggingface-cli download facebook/wav2vec2-base --local-dir downloads/wav2vec2-base
set -euo pipefail

./asr.sh \
  --train-set train --valid-set dev --test-sets "test_clean test_other" --local-data-opts "--train 960" \
  --feats-type raw_online --token-type char --pretrained "${PRETRAINED:-downloads/wav2vec2-base}" \
  --speed-perturb-factors "0.9 1.0 1.1" \
  --train-config conf/train_wav2vec2_ctc_ee_finetune.yaml \
  "$@"
