#!/usr/bin/env bash
# Early-exit Conformer-AED (a CTC head and a Transformer decoder per exit; 0.3*CTC + 0.7*CE), from scratch, on mini_tts:
# ~25-29 min of training on 1 thread; test WER 25.2 / 20.0 / 18.3 / 18.3 / 19.5 / 20.1 at exits 2..12 (../RESULTS.md).
# Joint beam search with CTC weight 0.5 and no pre-beam, both chosen on dev; a few policy points only,
# since each is a full joint-beam decode (stage 6 sweeps every policy offline).
set -euo pipefail

./asr.sh \
  --train-set train --valid-set dev --test-sets "test" \
  --nbpe 1000 --decode-args "--beam-size 5 --ctc-weight 0.5 --pre-beam-ratio 0" --nbest-size 5 \
  --policy-grid "fixed:6,12 entropy:0.05 nbest:0.35" \
  --train-config conf/train_conformer_aed_ee.yaml \
  "$@"
