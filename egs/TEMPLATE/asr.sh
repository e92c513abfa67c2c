#!/usr/bin/env bash
# The numbered stages of an ee-asr recipe. A recipe's run.sh passes its corpus options and "$@".
#   1 data prep (local/data.sh)   2 fbank + CMVN   3 sentencepiece   4 training
#   5 decoding at every exit      6 scoring and RESULTS.md
# Each stage is skipped when its .done marker holds the same options, and reruns when they change.
set -euo pipefail

# General
stage=1               # first stage to run
stop_stage=6          # last stage to run
nj=2                  # parallel jobs for feature extraction
dumpdir=dump          # features go here
expdir=exp            # experiments go here
# Data
local_data_opts=""    # options passed to local/data.sh
train_set=train       # training data dir under data/
valid_set=dev         # validation data dir (checkpoint selection)
test_sets="test"      # space-separated data dirs to decode
# Features
feats_type=fbank      # fbank (log-mel), or raw (the waveform, for wav2vec2 recipes)
n_mels=80             # log-mel fbank dimension
speed_perturb_factors=""  # e.g. "0.9 1.0 1.1": train on speed-perturbed copies (data/<train_set>_sp)
# Tokens
token_type=unigram    # sentencepiece model type: unigram, bpe or char
nbpe=300              # sentencepiece vocabulary size
# Training
train_config=conf/train.yaml  # model, optimizer and schedule
tag=""                # experiment name; default: <config name>_<token type>[<nbpe>] (no nbpe for char)
num_procs=1           # processes for torch DDP via torchrun (1: plain python)
device=cpu            # cpu or cuda
train_args=""         # extra options for ee_asr.bin.train, e.g. "--max-epoch 1 --set encoder_conf.num_blocks=4"
pretrained=""         # Hugging Face checkpoint dir to fine-tune from (wav2vec2 recipes)
# Decoding
decode_batch_bins=""  # padded frames per decoding batch; default 40000 fbank frames, 4000000 raw samples
inference_model=model.pth  # weights file under exp/<tag>/
nbest_beam=10         # K, hypotheses behind the nbest policy's N-best posterior (the paper used 300; cost grows with K)
decode_args=""        # extra options for decoding, e.g. "--beam-size 5 --ctc-weight 0.3" (joint beam search, AED)
# Online exit-selection decodes, "policy:threshold,threshold ..."; layers above each chosen exit
# are not computed. Stage 6 adds offline sweeps over a dense grid from the per-exit scores.
# A `learned` term makes stage 5 fit the exit classifier on $valid_set first (exit_classifier_args:
# options of ee_asr.bin.fit_exit_classifier, e.g. "--group-regex ..." to hold out voice groups).
policy_grid="fixed:2,4,6,8,10,12 entropy:0.02,0.05,0.1 maxprob:0.9,0.95,0.98 nbest:0.2,0.35,0.5 seqpost:0.06,0.13 agree:0,0.2 learned:0.63,0.69,0.75"
exit_classifier_args=""
max_layers=""         # a layer budget for every online policy point (empty: none)

help_message="Usage: $0 [options]   (every variable above is an option: --stop-stage 4, --nbpe 500, ...)"
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/stage.sh
orig_args=$(printf '%q ' "$@")
. utils/parse_options.sh
[ $# -eq 0 ] || { log "unexpected arguments: $*"; exit 1; }

[ -f "$train_config" ] || { log "train config $train_config does not exist"; exit 1; }
if [ -z "$tag" ]; then
  tag="$(basename "${train_config%.*}")_${token_type}"; [ "$token_type" = char ] || tag="${tag}${nbpe}"
fi
exp="$expdir/$tag"
bpedir="data/token_list/${token_type}"; [ "$token_type" = char ] || bpedir="${bpedir}${nbpe}"
rerun() { log "to rerun this stage: $0 ${orig_args}--stage $1 --stop-stage $1"; }
want() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
file_sig() { [ -f "$1" ] && md5sum < "$1" | cut -c1-12 || echo none; }

if want 1; then
  opts="local_data_opts=$local_data_opts sets=$train_set,$valid_set,$test_sets"
  if stage_skip 1 data "$opts"; then
    log "Stage 1: data prep already done with the same options"
  else
    log "Stage 1: data prep: local/data.sh $local_data_opts"; rerun 1
    stage_begin 1 data "$opts"
    # shellcheck disable=SC2086
    local/data.sh $local_data_opts
    for d in $train_set $valid_set $test_sets; do
      python -m ee_asr.bin.validate_data_dir "data/$d"
    done
    stage_end 1 data "$opts"
  fi
fi

if [ -z "$decode_batch_bins" ]; then  # the same 400 s of audio either way
  if [ "$feats_type" = raw ]; then decode_batch_bins=4000000; else decode_batch_bins=40000; fi
fi

orig_train_set=$train_set
[ -z "$speed_perturb_factors" ] || train_set="${train_set}_sp"

if want 2; then
  opts="feats_type=$feats_type n_mels=$n_mels speed=$speed_perturb_factors nj=$nj data=$(cat data/.stage1.done 2>/dev/null | md5sum | cut -c1-12)"
  if stage_skip 2 "$dumpdir" "$opts"; then
    log "Stage 2: features already done with the same options"
  else
    log "Stage 2: $feats_type features ($n_mels mel bins for fbank) for $train_set $valid_set $test_sets with $nj jobs"; rerun 2
    stage_begin 2 "$dumpdir" "$opts"
    if [ -n "$speed_perturb_factors" ]; then
      # shellcheck disable=SC2086
      python -m ee_asr.bin.perturb_speed --data "data/$orig_train_set" --out "data/$train_set" --factors $speed_perturb_factors
    fi
    for d in $train_set $valid_set $test_sets; do
      out="$dumpdir/$d"; mkdir -p "$out/split"
      cp data/$d/{text,utt2spk,spk2utt,wav.scp} "$out/"
      n=$(wc -l < "data/$d/text"); this_nj=$(( nj < n ? nj : n ))
      if [ -f "data/$d/segments" ]; then
        utils/split_scp.sh "data/$d/segments" "$this_nj" "$out/split/segments"
        seg_opt="--segments $out/split/segments.JOB"
        utils/split_scp.sh "data/$d/wav.scp" 1 "$out/split/wav"  # every job reads the whole wav.scp
        wav_of_job="$out/split/wav.1"
      else
        utils/split_scp.sh "data/$d/wav.scp" "$this_nj" "$out/split/wav"
        seg_opt=""; wav_of_job="$out/split/wav.JOB"
      fi
      # shellcheck disable=SC2086
      $train_cmd JOB=1:"$this_nj" "$out/log/fbank.JOB.log" \
        python -m ee_asr.bin.compute_fbank --wav-scp "$wav_of_job" $seg_opt \
          --out-prefix "$out/split/feats.JOB" --num-mel-bins "$n_mels" --feats-type "$feats_type"
      for ((j = 1; j <= this_nj; j++)); do cat "$out/split/feats.$j.scp"; done > "$out/feats.scp.tmp"
      for ((j = 1; j <= this_nj; j++)); do cat "$out/split/feats.$j.num_frames"; done > "$out/utt2num_frames.tmp"
      mv "$out/feats.scp.tmp" "$out/feats.scp"; mv "$out/utt2num_frames.tmp" "$out/utt2num_frames"
      log "  $d: $(wc -l < "$out/feats.scp") utterances"
    done
    python -m ee_asr.bin.compute_cmvn "$dumpdir/$train_set/feats.scp" "$dumpdir/$train_set/cmvn.npz"
    stage_end 2 "$dumpdir" "$opts"
  fi
fi

if want 3; then
  opts="token_type=$token_type nbpe=$nbpe text=$(file_sig data/$train_set/text)"
  if stage_skip 3 "$bpedir" "$opts"; then
    log "Stage 3: sentencepiece already trained with the same options"
  else
    log "Stage 3: sentencepiece $token_type with $nbpe pieces on data/$train_set/text"; rerun 3
    stage_begin 3 "$bpedir" "$opts"
    python -m ee_asr.bin.train_bpe --text "data/$train_set/text" --model-prefix "$bpedir/bpe" \
      --vocab-size "$nbpe" --model-type "$token_type"
    stage_end 3 "$bpedir" "$opts"
  fi
fi

if want 4; then
  opts="config=$(file_sig "$train_config") bpe=$(file_sig "$bpedir/bpe.model") feats=$(file_sig "$dumpdir/$train_set/feats.scp") procs=$num_procs args=$train_args pretrained=$pretrained"
  if stage_skip 4 "$exp" "$opts"; then
    log "Stage 4: $exp already trained with the same options"
  else
    log "Stage 4: training $exp with $train_config (log: $exp/train.rank0.log)"; rerun 4
    mkdir -p "$exp"
    rm -f "$exp/.stage4.done"  # training resumes from its own checkpoints, so nothing is removed
    # shellcheck disable=SC2206
    args=(--config "$train_config" --train-dir "$dumpdir/$train_set" --valid-dir "$dumpdir/$valid_set"
                --bpemodel "$bpedir/bpe.model" --cmvn "$dumpdir/$train_set/cmvn.npz" --exp-dir "$exp" --device "$device"
                ${pretrained:+--pretrained "$pretrained"} $train_args)
    if [ "$num_procs" -gt 1 ]; then
      torchrun --standalone --nproc_per_node "$num_procs" -m ee_asr.bin.train "${args[@]}"
    else
      python -m ee_asr.bin.train "${args[@]}"
    fi
    stage_end 4 "$exp" "$opts"
  fi
fi

if want 5; then
  opts="model=$(file_sig "$exp/$inference_model") sets=$test_sets batch_bins=$decode_batch_bins beam=$nbest_beam grid=$policy_grid args=$decode_args clf=$exit_classifier_args max=$max_layers"
  if stage_skip 5 "$exp" "$opts"; then
    log "Stage 5: decoding already done with the same options"
  else
    log "Stage 5: decoding $test_sets at every exit of $exp, then with each exit policy"; rerun 5
    rm -f "$exp/exit_classifier.json"
    if [[ " $policy_grid" == *" learned:"* ]]; then
      # shellcheck disable=SC2086
      python -m ee_asr.bin.fit_exit_classifier --exp-dir "$exp" --data-dir "$dumpdir/$valid_set" \
        --model-file "$inference_model" --batch-bins "$decode_batch_bins" --device "$device" $exit_classifier_args
    fi
    for d in $test_sets; do
      python -m ee_asr.bin.decode --exp-dir "$exp" --data-dir "$dumpdir/$d" --model-file "$inference_model" \
        --batch-bins "$decode_batch_bins" --device "$device" --nbest-beam "$nbest_beam" $decode_args
      rm -rf "$exp/decode_$d"/policy_*
      [ -z "$policy_grid" ] && continue
      # shellcheck disable=SC2086
      python -m ee_asr.bin.decode_policy --exp-dir "$exp" --data-dir "$dumpdir/$d" --grid $policy_grid \
        --nbest-size "$nbest_beam" --model-file "$inference_model" --batch-bins "$decode_batch_bins" --device "$device" \
        ${max_layers:+--max-layers "$max_layers"} $decode_args
    done
    stage_end 5 "$exp" "$opts"
  fi
fi

if want 6; then
  log "Stage 6: scoring $exp"; rerun 6
  python -m ee_asr.bin.score --exp-dir "$exp"
  stage_end 6 "$exp" "decoded=$(cat "$exp/.stage5.done" 2>/dev/null | md5sum | cut -c1-12)"
fi
log "Successfully finished stages $stage-$stop_stage. [elapsed=${SECONDS}s]"
