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
num_procs=1           # processes for torch DDP via torchrun (1: plain python), per node
num_nodes=1           # machines training together (torchrun c10d rendezvous; needs a shared filesystem)
node_rank=0           # this machine's rank among --num-nodes (run asr.sh on every node)
master_addr=""        # rendezvous host for --num-nodes > 1 (node 0's address)
master_port=29500     # rendezvous port on --master-addr
device=cpu            # cpu or cuda
train_args=""         # extra options for ee_asr.bin.train, e.g. "--max-epoch 1 --set encoder_conf.num_blocks=4"
pretrained=""         # Hugging Face checkpoint dir to fine-tune from (wav2vec2 recipes)
# Decoding
decode_batch_bins=""  # padded frames per decoding batch; default 40000 fbank frames, 4000000 raw samples
inference_model=model.pth  # weights file under exp/<tag>/
decode_nj=2           # decoding jobs per test set through $decode_cmd (merged; the same results as one job)
nbest_beam=10         # N-best size K for the nbest posterior (the paper used 300; cost grows with K)
decode_args=""        # extra options for decoding, e.g. "--beam-size 5 --ctc-weight 0.3" (joint beam search, AED)
# Online exit-selection decodes, "policy:threshold,threshold ..."; layers above each chosen exit
# are not computed. Stage 6 adds offline sweeps over a dense grid from the per-exit scores.
policy_grid="fixed:2,4,6,8,10,12 entropy:0.02,0.05,0.1 maxprob:0.9,0.95,0.98 nbest:0.5,0.8,0.95"

help_message="Usage: $0 [options]   (every variable above is an option: --stop-stage 4, --nbpe 500, ...)"
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/stage.sh
orig_args=$(printf '%q ' "$@")
. utils/parse_options.sh
[ $# -eq 0 ] || { log "unexpected arguments: $*"; exit 1; }

# Option values, checked before any work: a typo must fail here, not skip every stage silently.
bad_option() { log "ERROR: $*"; exit 1; }
for v in stage stop_stage nj num_procs decode_nj n_mels nbpe num_nodes master_port; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || bad_option "--${v//_/-} must be a whole number, not '${!v}'"
done
[[ "$node_rank" =~ ^[0-9]+$ ]] || bad_option "--node-rank must be a whole number, not '$node_rank'"
[[ -z "$decode_batch_bins" || "$decode_batch_bins" =~ ^[1-9][0-9]*$ ]] \
  || bad_option "--decode-batch-bins must be a positive whole number, not '$decode_batch_bins'"
for v in nj num_procs decode_nj n_mels nbpe num_nodes master_port; do
  [ "${!v}" -ge 1 ] || bad_option "--${v//_/-} must be at least 1, not ${!v}"
done
[ "$stage" -ge 1 ] && [ "$stage" -le 6 ] || bad_option "--stage must be 1-6, not $stage"
[ "$stop_stage" -ge 1 ] || bad_option "--stop-stage must be at least 1, not $stop_stage"
[ "$stage" -le "$stop_stage" ] || bad_option "--stage $stage is after --stop-stage $stop_stage: no stage would run"
[ "$node_rank" -lt "$num_nodes" ] || bad_option "--node-rank $node_rank must be below --num-nodes $num_nodes"
[ "$num_nodes" -eq 1 ] || [ -n "$master_addr" ] || bad_option "--num-nodes $num_nodes needs --master-addr (node 0's address)"
[ "$num_nodes" -eq 1 ] || { [ "$stage" -eq 4 ] && [ "$stop_stage" -eq 4 ]; } \
  || bad_option "--num-nodes $num_nodes: run only training on every node (--stage 4 --stop-stage 4), the rest on one"
case "$token_type" in unigram|bpe|char) ;; *) bad_option "--token-type must be unigram, bpe or char, not '$token_type'" ;; esac
case "$feats_type" in fbank|raw) ;; *) bad_option "--feats-type must be fbank or raw, not '$feats_type'" ;; esac
case "$device" in cpu|cuda) ;; *) bad_option "--device must be cpu or cuda, not '$device'" ;; esac

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
    stage_begin 1 data "$opts" $(for d in $train_set $valid_set $test_sets; do echo "data/$d"; done)
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
    stage_begin 2 "$dumpdir" "$opts" ${speed_perturb_factors:+"data/$train_set"}
    if [ -n "$speed_perturb_factors" ]; then
      # shellcheck disable=SC2086
      python -m ee_asr.bin.perturb_speed --data "data/$orig_train_set" --out "data/$train_set" --factors $speed_perturb_factors
    fi
    for d in $train_set $valid_set $test_sets; do
      out="$dumpdir/$d"
      # declared as they are written: an interrupted run's cleanup leaves the cmvn.npz that
      # trained models read unless this stage got as far as rewriting it
      stage_output 2 "$dumpdir" "$out"/{split,log,text,utt2spk,spk2utt,wav.scp,feats.scp,utt2num_frames}
      mkdir -p "$out/split"
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
    stage_output 2 "$dumpdir" "$dumpdir/$train_set/cmvn.npz"
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
    stage_begin 3 "$bpedir" "$opts" "$bpedir/bpe.model" "$bpedir/bpe.vocab"
    python -m ee_asr.bin.train_bpe --text "data/$train_set/text" --model-prefix "$bpedir/bpe" \
      --vocab-size "$nbpe" --model-type "$token_type"
    stage_end 3 "$bpedir" "$opts"
  fi
fi

if want 4; then
  opts="config=$(file_sig "$train_config") bpe=$(file_sig "$bpedir/bpe.model") feats=$(file_sig "$dumpdir/$train_set/feats.scp") procs=$num_procs nodes=$num_nodes args=$train_args pretrained=$pretrained"
  if stage_skip 4 "$exp" "$opts"; then
    log "Stage 4: $exp already trained with the same options"
  else
    train_log="$exp/train.log"; [ "$num_nodes" -eq 1 ] || train_log="$exp/train.node$node_rank.log"
    log "Stage 4: training $exp with $train_config (log: $exp/train.rank0.log, launcher's: $train_log)"; rerun 4
    mkdir -p "$exp"
    rm -f "$exp/.stage4.done"  # training resumes from its own checkpoints, so nothing is removed
    # shellcheck disable=SC2206
    args=(--config "$train_config" --train-dir "$dumpdir/$train_set" --valid-dir "$dumpdir/$valid_set"
                --bpemodel "$bpedir/bpe.model" --cmvn "$dumpdir/$train_set/cmvn.npz" --exp-dir "$exp" --device "$device"
                ${pretrained:+--pretrained "$pretrained"} $train_args)
    # Through $train_cmd, so that a cluster runs it (cores and GPUs of this node); several nodes
    # meet at a c10d rendezvous on --master-addr, each running this stage with its --node-rank.
    if [ "$num_nodes" -gt 1 ]; then
      launcher=(torchrun --nnodes "$num_nodes" --node-rank "$node_rank" --nproc-per-node "$num_procs"
                --rdzv-backend c10d --rdzv-endpoint "$master_addr:$master_port" --rdzv-id "$tag")
    elif [ "$num_procs" -gt 1 ]; then
      launcher=(torchrun --standalone --nproc-per-node "$num_procs")
    else
      launcher=(python)
    fi
    ngpu=0; [ "$device" = cpu ] || ngpu=$num_procs
    $train_cmd --num-threads "$num_procs" --gpu "$ngpu" "$train_log" "${launcher[@]}" -m ee_asr.bin.train "${args[@]}"
    stage_end 4 "$exp" "$opts"
  fi
fi

if want 5; then
  opts="model=$(file_sig "$exp/$inference_model") sets=$test_sets batch_bins=$decode_batch_bins beam=$nbest_beam grid=$policy_grid args=$decode_args"
  if stage_skip 5 "$exp" "$opts"; then
    log "Stage 5: decoding already done with the same options"
  else
    log "Stage 5: decoding $test_sets at every exit of $exp, then with each exit policy"; rerun 5
    # Each set is shared among --decode-nj jobs of whole batches (one model load per job), run
    # through $decode_cmd, then merged: every utterance exactly once, the same bytes as one job.
    dgpu=0; [ "$device" = cpu ] || dgpu=1
    for d in $test_sets; do
      ddir="$exp/decode_$d"; split="$ddir/split"
      rm -rf "$split" "$ddir/log" "$ddir"/policy_*
      n=$(python -m ee_asr.bin.split_decode --data-dir "$dumpdir/$d" --batch-bins "$decode_batch_bins" \
            --nj "$decode_nj" --output "$split")
      # shellcheck disable=SC2086
      $decode_cmd --gpu "$dgpu" JOB=1:"$n" "$ddir/log/decode.JOB.log" \
        python -m ee_asr.bin.decode --exp-dir "$exp" --data-dir "$dumpdir/$d" --model-file "$inference_model" \
          --batch-bins "$decode_batch_bins" --device "$device" --nbest-beam "$nbest_beam" \
          --utt-list "$split/utts.JOB" --output-dir "$split/JOB" $decode_args
      if [ -n "$policy_grid" ]; then
        # shellcheck disable=SC2086
        $decode_cmd --gpu "$dgpu" JOB=1:"$n" "$ddir/log/policy.JOB.log" \
          python -m ee_asr.bin.decode_policy --exp-dir "$exp" --data-dir "$dumpdir/$d" --grid $policy_grid \
            --beam "$nbest_beam" --model-file "$inference_model" --batch-bins "$decode_batch_bins" --device "$device" \
            --utt-list "$split/utts.JOB" --output "$split/JOB" $decode_args
      fi
      # shellcheck disable=SC2046
      python -m ee_asr.bin.merge_decodes --data-dir "$dumpdir/$d" --output "$ddir" $(seq -f "$split/%g" 1 "$n")
      rm -rf "$split"
      log "  $d: $n decoding jobs merged into $ddir (their logs: $ddir/log/)"
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
