#!/usr/bin/env bash
# Early-exit Conformer-CTC (exits every 2 of 12 layers) on the synthetic mini corpus: `make demo`.
# About 20 minutes on a 2-core CPU; `--local-data-opts "--size tiny"` for a smoke test.
# data/ and dump/ are the corpus's, shared with the other mini_tts recipes. Results: ../RESULTS.md.
# The exit classifier (the `learned` policy) is fitted on dev_unseen, dev's sentences in voices
# that neither training nor test uses, since the test set speaks voices training never heard;
# its regularisation is chosen holding out whole voice families (espeak variants).
set -euo pipefail

./asr.sh \
  --train-set train \
  --valid-set dev \
  --test-sets "test" \
  --nbpe 1000 \
  --train-config conf/train_conformer_ctc_ee.yaml \
  --exit-classifier-set dev_unseen \
  --exit-classifier-args "--group-regex ([a-z]+[0-9]*)-p[0-9]+-s" \
  "$@"
