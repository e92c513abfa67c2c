#!/usr/bin/env bash
# Plain fine-tuning of a pre-trained Wav2Vec2 (last exit's loss only), evaluated at every exit, on mini_tts.
# It starts from ../wav2vec2_pretrain's self-supervised checkpoint (run that recipe first):
#   PRETRAINED=DIR or --pretrained DIR for another Hugging Face Wav2Vec2 dir. For the real
#   facebook/wav2vec2-base, on a machine that can download it (a GPU one: it is 95M parameters):
#     huggingface-cli download facebook/wav2vec2-base --local-dir downloads/wav2vec2-base
#     ./run.sh --pretrained downloads/wav2vec2-base --device cuda --train-args "--set num_threads=4"
#   (the architecture comes from its config.json; this config's lr and epochs are for the mini one).
# The random-initialisation baseline: ../wav2vec2_pretrain/run.sh --stage 2 --max-updates 0
#   --out-dir exp/wav2vec2_random, then --pretrained ../wav2vec2_pretrain/exp/wav2vec2_random/hf --tag <name>.
set -euo pipefail

./asr.sh \
  --train-set train --valid-set dev --test-sets "test" --exit-classifier-set dev_unseen \
  --feats-type raw --nbpe 1000 --pretrained "${PRETRAINED:-../wav2vec2_pretrain/exp/wav2vec2_pretrain/hf}" \
  --train-config conf/train_wav2vec2_ctc_finetune.yaml \
  "$@"
