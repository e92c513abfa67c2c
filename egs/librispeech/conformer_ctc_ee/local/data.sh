#!/usr/bin/env bash
# LibriSpeech (openslr 12) into data/{train,dev,test_clean,test_other}: dev is dev-clean + dev-other.
# Archives are downloaded into --download-dir (shared by this corpus's recipes), resumed when a
# download broke off, checked against the publisher's checksums, and extracted once.
set -euo pipefail
. ./path.sh
. utils/log.sh

download_dir=../downloads  # where the archives go and are extracted
train=960              # training hours: 960, or 100 (train-clean-100 only)
download=true          # false: use the archives already in --download-dir, never download
mirror=""              # fetch from this URL prefix instead, e.g. https://us.openslr.org/resources/12
help_message="Usage: $0 [--download-dir DIR] [--train 960|100] [--download true|false] [--mirror URL]"
. utils/parse_options.sh

log "preparing librispeech from $download_dir into data/"
python -m ee_asr.bin.prepare_corpus librispeech --download-dir "$download_dir" --data-dir data --train "$train" \
  --download "$download" ${mirror:+--mirror "$mirror"}
