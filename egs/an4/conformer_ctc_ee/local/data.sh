#!/usr/bin/env bash
# CMU AN4 into data/{train,dev,test}; dev is every tenth training speaker.
# Archives are downloaded into --download-dir (shared by this corpus's recipes), resumed when a
# download broke off, checked against the publisher's checksums, and extracted once.
set -euo pipefail
. ./path.sh
. utils/log.sh

download_dir=../downloads  # where the archives go and are extracted
download=true          # false: use the archives already in --download-dir, never download
mirror=""              # fetch from this URL prefix instead, e.g. https://dldata-public.s3.us-east-2.amazonaws.com
help_message="Usage: $0 [--download-dir DIR] [--download true|false] [--mirror URL]"
. utils/parse_options.sh

log "preparing an4 from $download_dir into data/"
python -m ee_asr.bin.prepare_corpus an4 --download-dir "$download_dir" --data-dir data \
  --download "$download" ${mirror:+--mirror "$mirror"}
