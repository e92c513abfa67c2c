#!/usr/bin/env bash
# Plain fine-tuning of a pre-trained Wav2Vec2 (last exit's loss only), evaluated at every exit, on mini_tts.
# PRETRAINED=DIR (or --pretrained DIR): a Hugging Face Wav2Vec2 dir; on the mini corpus, export one
#   from ../wav2vec2_ctc_ee_scratch: python -m ee_asr.bin.export_hf --exp-dir ../wav2vec2_ctc_ee_scratch/exp/wav2vec2_ctc_ee_scratch_char --output downloads/wav2vec2-mini
set -euo pipefail

./asr.sh \
  --train-set train --valid-set dev --test-sets "test" \
  --feats-type raw --token-type char --pretrained "${PRETRAINED:-downloads/wav2vec2-mini}" \
  --train-config conf/train_wav2vec2_ctc_finetune.yaml \
  "$@"
