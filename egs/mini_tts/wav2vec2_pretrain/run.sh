#!/usr/bin/env bash
# Self-supervised pre-training (wav2vec 2.0: masked frames, gumbel quantizer, contrastive and
# diversity loss) of the small Wav2Vec2 of ../wav2vec2_ctc_ee_scratch (its config, linked in
# conf/: the same architecture, so fine-tuning compares fairly with training from scratch) on
# mini_tts's training audio, without its transcripts. Writes exp/wav2vec2_pretrain/hf, a Hugging
# Face checkpoint that ../wav2vec2_ctc_ee_finetune and ../wav2vec2_ctc_finetune start from.
# Run again to resume; --max-updates 0 --out-dir exp/wav2vec2_random saves a random
# initialisation instead (the baseline that shows what pre-training adds). Results: ../RESULTS.md.
set -euo pipefail
# General
stage=1                # 1: corpus and raw-audio dump (asr.sh stages 1-2, shared with the other recipes), 2: pre-training
stop_stage=2
nj=2                   # parallel jobs for stage 1's feature dump
local_data_opts=""     # options of local/data.sh; the corpus's recipes share data/, so give them the same
# Pre-training
arch_config=conf/arch_wav2vec2_small.yaml  # a wav2vec2_ee training config (this one links the scratch recipe's): its encoder_conf.hf_config
out_dir=exp/wav2vec2_pretrain
max_updates=8500       # about 20 minutes on one thread of a 2-core CPU (7.3 updates/s), 14 epochs
pretrain_args=""       # more options of ee_asr.bin.pretrain_wav2vec2, e.g. "--lr 0.002 --mask-prob 0.65"
help_message="Usage: $0 [options]   (stages: 1 corpus and raw audio, 2 pre-training)"
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/parse_options.sh
[ $# -eq 0 ] || { log "unexpected arguments: $*"; exit 1; }

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  ./asr.sh --stage 1 --stop-stage 2 --feats-type raw --nj "$nj" --local-data-opts "$local_data_opts" \
    --train-config "$arch_config"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: pre-training into $out_dir (log: $out_dir/pretrain.log); run again to resume"
  mkdir -p "$out_dir"
  # shellcheck disable=SC2086
  $train_cmd --num-threads 1 "$out_dir/pretrain.job.log" \
    python -m ee_asr.bin.pretrain_wav2vec2 --arch-config "$arch_config" --train-dir dump/raw/train \
      --out-dir "$out_dir" --max-updates "$max_updates" $pretrain_args
  log "fine-tune from it: cd ../wav2vec2_ctc_ee_finetune && ./run.sh --pretrained $(readlink -f "$out_dir/hf")"
fi
