#!/usr/bin/env bash
# TED-LIUM 3 (openslr 51, legacy split) into data/{train,dev,test} with segments.
# Archives are downloaded into --download-dir (shared by this corpus's recipes), resumed when a
# download broke off, checked against the publisher's checksums, and extracted once.
set -euo pipefail
. ./path.sh
. utils/log.sh

download_dir=../downloads  # where the archives go and are extracted
download=true          # false: use the archives already in --download-dir, never download
mirror=""              # fetch from this URL prefix instead, e.g. https://us.openslr.org/resources/51
help_message="Usage: $0 [--download-dir DIR] [--download true|false] [--mirror URL]"
. utils/parse_options.sh

log "preparing tedlium3 from $download_dir into data/"
python -m ee_asr.bin.prepare_corpus tedlium3 --download-dir "$download_dir" --data-dir data \
  --download "$download" ${mirror:+--mirror "$mirror"}
