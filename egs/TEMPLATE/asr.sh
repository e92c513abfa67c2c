#!/usr/bin/env bash
# The numbered stages of an ee-asr recipe. A recipe's run.sh passes its corpus options and "$@".
#   1 data prep (local/data.sh)   2 features + CMVN   3 sentencepiece   4 training
#   5 decoding at every exit      6 scoring and RESULTS.md      7 ONNX export (not run by default)
# Each stage is skipped when its .done marker holds the same options and the same digests of the
# inputs it read (data, dump, token model, config, weights), and reruns, saying why, when they
# change. Every stage locks the directory it writes (another run refuses, naming it, before
# removing anything); shared artefacts (token model, CMVN, LM) get a new <sha12>/ dir per version.
set -euo pipefail

# General
stage=1               # first stage to run
stop_stage=6          # last stage to run
nj=2                  # parallel jobs for feature extraction
dumpdir=dump          # features go to <dumpdir>/<feats_type>/<set>; a link to the corpus's dump/ shares them
expdir=exp            # experiments go here
# Data
local_data_opts=""    # options passed to local/data.sh; recipes of one corpus share data/, so give them the same
train_set=train       # training data dir under data/
valid_set=dev         # validation data dir (checkpoint selection)
test_sets="test"      # space-separated data dirs to decode
# Features
feats_type=fbank      # fbank (log-mel), raw (the waveform, for wav2vec2 recipes), or fbank_online / raw_online
                      # (fbank / the waveform computed from the audio as training and decoding read it:
                      # stage 2 writes lengths and CMVN only)
n_mels=80             # log-mel fbank dimension
speed_perturb_factors=""  # e.g. "0.9 1.0 1.1": train on speed-perturbed copies (data/<train_set>_sp); with
                          # fbank_online or raw_online, each utterance at one factor drawn per epoch, at load time
# Tokens
token_type=unigram    # sentencepiece model type: unigram, bpe or char
nbpe=300              # sentencepiece vocabulary size
# Word LM
use_lm=false          # true: stage 3 builds a word n-gram LM, stage 5 also decodes every exit with it (decode_<set>_lm/)
lm_order=3            # n-gram order of the interpolated Kneser-Ney LM
lm_text=""            # plain text, one sentence per line; default: the training transcripts
lm_weight=1.0         # weight of the LM's log10 score in the LM beam (1.0 was best on mini_tts dev)
word_score=2.0        # score added per word in the LM beam (2.0 was best on mini_tts dev)
lm_beam_size=50       # hypotheses the LM beam keeps per frame
# Training
train_config=""       # model, optimizer and schedule, conf/train_<model>.yaml (required)
tag=""                # experiment name; default: <config name without train_>_<token type>[<nbpe>]
tag_suffix=""         # appended to the default tag (single_exit.sh: _depth<L>)
num_procs=1           # processes for torch DDP via torchrun (1: plain python), per node
num_nodes=1           # machines training together (torchrun c10d rendezvous; needs a shared filesystem)
node_rank=0           # this machine's rank among --num-nodes (run asr.sh on every node)
master_addr=""        # rendezvous host for --num-nodes > 1 (node 0's address)
master_port=29500     # rendezvous port on --master-addr
device=cpu            # cpu or cuda
train_args=""         # extra options for ee_asr.bin.train, e.g. "--max-epoch 1 --set encoder_conf.num_blocks=4"
pretrained=""         # Hugging Face checkpoint dir to fine-tune from (wav2vec2 recipes)
# Decoding
decode_batch_bins=""  # padded frames per decoding batch; default 40000 fbank frames, 4000000 raw(_online) samples
inference_model=model.pth  # weights file under exp/<tag>/
decode_nj=2           # decoding jobs per test set through $decode_cmd (merged; the same results as one job)
nbest_size=10         # K, hypotheses behind the nbest policy's N-best posterior (the paper used 300; cost grows with K)
decode_args=""        # extra options for decoding, e.g. "--beam-size 5 --ctc-weight 0.3" (joint beam search, AED)
# Online exit-selection decodes, "policy:threshold,threshold ..."; layers above each chosen exit
# are not computed. Stage 6 adds offline sweeps over a dense grid from the per-exit scores.
# A `learned` term makes stage 5 fit the exit classifier on $exit_classifier_set first.
policy_grid="fixed:2,4,6,8,10,12 entropy:0.02,0.05,0.1 maxprob:0.9,0.95,0.98 nbest:0.2,0.35,0.5 seqpost:0.06,0.13 agree:0,0.2 learned:0.63,0.69,0.75"
exit_classifier_set=""   # data dir the exit classifier learns from (default: $valid_set); best of voices or
                         # conditions the model never trained on, like the test set's (mini_tts: dev_unseen)
exit_classifier_args=""  # options of ee_asr.bin.fit_exit_classifier, e.g. "--group-regex RE" to hold out voice groups
max_layers=""         # a layer budget for every online policy point (empty: none)
max_wer_increase=""   # e.g. "0.5 1 2": per policy, the least compute within +ε WER of the last exit (stage 6 checks it)
                      # stage 5 calibrates each --policy-grid policy on $exit_classifier_set: exp/<tag>/calibration.json
calibration_confidence=0.9  # 1 - δ: the probability with which each calibrated promise holds
blank_skip_sweep=""   # e.g. "4:0.9,0.95": stage 6 also times blank frames dropped after exit 4 at those blank
                      # posteriors, alone and under each --policy-grid policy, against the fixed exits (first test set)
# ONNX export (stage 7, after scoring; run it with --stop-stage 7): exp/<tag>/onnx, for ee_asr/deploy/
export_int8=true          # also write int8 graphs (MatMul-only), their CER checked on the first test set
export_max_cer_increase=1.0  # CER points int8 may lose at any exit; more fails the stage (int8 removed)
export_sherpa_exits=""    # exits to write as single sherpa-onnx CTC graphs, e.g. "6 12"

help_message="Usage: $0 [options]   (stages: 1 data, 2 features, 3 tokens, 4 training, 5 decoding, 6 scoring, 7 ONNX export)"
. ./path.sh
. ./cmd.sh
. utils/log.sh
. utils/stage.sh
orig_args=$(printf '%q ' "$@")
. utils/parse_options.sh
[ $# -eq 0 ] || { log "unexpected arguments: $*"; exit 1; }
stage_traps  # locks released at exit; Ctrl-C logs the stage it stopped

[ -n "$train_config" ] || { log "give --train-config conf/train_<model>.yaml"; exit 1; }
# Option values, checked before any work: a typo must fail here, not skip every stage silently.
bad_option() { log "ERROR: $*"; exit 1; }
for v in stage stop_stage nj num_procs decode_nj n_mels nbpe num_nodes master_port nbest_size; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || bad_option "--${v//_/-} must be a whole number, not '${!v}'"
done
[[ "$node_rank" =~ ^[0-9]+$ ]] || bad_option "--node-rank must be a whole number, not '$node_rank'"
[[ -z "$decode_batch_bins" || "$decode_batch_bins" =~ ^[1-9][0-9]*$ ]] \
  || bad_option "--decode-batch-bins must be a positive whole number, not '$decode_batch_bins'"
for v in nj num_procs decode_nj n_mels nbpe num_nodes master_port nbest_size; do
  [ "${!v}" -ge 1 ] || bad_option "--${v//_/-} must be at least 1, not ${!v}"
done
[ "$stage" -ge 1 ] && [ "$stage" -le 7 ] || bad_option "--stage must be 1-7, not $stage"
[ "$stop_stage" -ge 1 ] || bad_option "--stop-stage must be at least 1, not $stop_stage"
[ "$stage" -le "$stop_stage" ] || bad_option "--stage $stage is after --stop-stage $stop_stage: no stage would run"
[ "$node_rank" -lt "$num_nodes" ] || bad_option "--node-rank $node_rank must be below --num-nodes $num_nodes"
[ "$num_nodes" -eq 1 ] || [ -n "$master_addr" ] || bad_option "--num-nodes $num_nodes needs --master-addr (node 0's address)"
[ "$num_nodes" -eq 1 ] || { [ "$stage" -eq 4 ] && [ "$stop_stage" -eq 4 ]; } \
  || bad_option "--num-nodes $num_nodes: run only training on every node (--stage 4 --stop-stage 4), the rest on one"
case "$token_type" in unigram|bpe|char) ;; *) bad_option "--token-type must be unigram, bpe or char, not '$token_type'" ;; esac
case "$feats_type" in fbank|raw|fbank_online|raw_online) ;; *)
  bad_option "--feats-type must be fbank, raw, fbank_online or raw_online, not '$feats_type'" ;; esac
case "$device" in cpu|cuda) ;; *) bad_option "--device must be cpu or cuda, not '$device'" ;; esac
if [ -n "$policy_grid" ]; then  # every threshold against its policy's meaning, before any work
  # shellcheck disable=SC2086
  grid_error=$(python -c 'import sys; from ee_asr.exits.policies import parse_grid; from ee_asr.common.errors import UserError
try: parse_grid(sys.argv[1:])
except UserError as e: print(e)' $policy_grid) || bad_option "--policy-grid could not be checked"
  [ -z "$grid_error" ] || bad_option "--policy-grid: $grid_error"
fi
if [ -n "$blank_skip_sweep" ]; then
  [[ "$blank_skip_sweep" =~ ^[0-9]+:[0-9.]+(,[0-9.]+)*$ ]] \
    || bad_option "--blank-skip-sweep takes EXIT:THRESHOLD[,THRESHOLD...] (e.g. 4:0.9,0.95), not '$blank_skip_sweep'"
fi
for v in $max_wer_increase; do
  [[ "$v" =~ ^[0-9]*[.]?[0-9]+$ ]] || bad_option "--max-wer-increase takes WER points (numbers >= 0), not '$v'"
done
[[ "$calibration_confidence" =~ ^0?[.][0-9]*[1-9][0-9]*$ ]] \
  || bad_option "--calibration-confidence must be between 0 and 1, not '$calibration_confidence'"

[ -f "$train_config" ] || { log "train config $train_config does not exist"; exit 1; }
if [ -z "$tag" ]; then
  tag="$(basename "${train_config%.*}")"; tag="${tag#train_}_${token_type}"
  [ "$token_type" = char ] || tag="${tag}${nbpe}"
  tag="${tag}${tag_suffix}"
fi
exp="$expdir/$tag"
bpedir="data/token_list/${token_type}"; [ "$token_type" = char ] || bpedir="${bpedir}${nbpe}"
featdir="$dumpdir/$feats_type"
lmdir="data/lm_${lm_order}gram"
rerun() { log "to rerun this stage: $0 ${orig_args}--stage $1 --stop-stage $1"; }
want() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
# file_sig/files_sig: the options lines of markers written before input digests (stage_legacy)
file_sig() { [ -f "$1" ] && md5sum < "$1" | cut -c1-12 || echo none; }
files_sig() { local f; for f in "$@"; do file_sig "$f"; done | md5sum | cut -c1-12; }
# artefact STORE FILE [OLD]: where to read a shared artefact: its current version, or the file of
# the layout before versions (which experiments trained then name)
artefact() { if [ -e "$1/current" ]; then echo "$1/current/$2"; else echo "${3:-$1/$2}"; fi; }
publish() { python -m ee_asr.bin.stage_state publish --store "$1" --main "$2" "$1/.new" > /dev/null; }
# A recipe's data, dump and downloads may be links to its corpus's, shared by every recipe of the
# corpus (setup.sh makes them): the first use creates what they point to.
for d in data "$dumpdir" downloads; do
  if [ -L "$d" ] && [ ! -e "$d" ]; then mkdir -p "$(readlink -m "$d")"; fi
done

# the data dirs besides the training set that the stages read, each once
exit_classifier_set=${exit_classifier_set:-$valid_set}
eval_sets=$(printf '%s\n' $valid_set $exit_classifier_set $test_sets | awk '!seen[$0]++' | tr '\n' ' ')

if want 1; then
  opts="local_data_opts=$local_data_opts"
  stage_lock data "stage 1 (data prep)"
  missing=$(for d in $train_set $eval_sets; do [ -d "data/$d" ] || printf ' %s' "$d"; done)
  # It reads the recipe's local/ scripts, any file an option of local/data.sh names (by content),
  # and the corpus as downloaded: downloads/ and any directory an option names (a --download-dir),
  # by its files' sizes and mtimes, never read whole, recorded as stage 1 leaves them, since
  # stage 1 downloads into them.
  stage1_inputs=(local tree:downloads)
  for o in $local_data_opts; do
    o=${o#--*=}
    if [ -f "$o" ]; then stage1_inputs+=("$o"); elif [ -d "$o" ]; then stage1_inputs+=("tree:$o"); fi
  done
  done1=0
  stage_legacy="$opts" stage_refuse_option_changes=1 stage_skip 1 data "$opts" "${stage1_inputs[@]}" || done1=$?
  if [ "$done1" -eq 0 ] && [ -z "$missing" ]; then
    log "Stage 1: data prep already done with the same options on the same corpus files"
  elif [ "$done1" -eq 3 ]; then
    log "Stage 1: data/ ($(readlink -f data)) was prepared with other options (above)"
    log "  this run asks for: $opts"
    log "  every recipe of the corpus reads it: pass the same --local-data-opts, or remove $(readlink -f data)"
    log "  and $(readlink -f "$dumpdir") to prepare the corpus anew"
    rm -f data/.stage1.inputs  # what stage_skip saw, for a run that is not going to happen
    exit 1
  else
    [ -z "$missing" ] || [ ! -f data/.stage1.done ] || log "Stage 1: data/ lacks$missing: local/data.sh again (it keeps what exists)"
    log "Stage 1: data prep: local/data.sh $local_data_opts"; rerun 1
    stage_begin 1 data "$opts" $(for d in $train_set $eval_sets; do echo "data/$d"; done)
    # shellcheck disable=SC2086
    local/data.sh $local_data_opts
    for d in $train_set $eval_sets; do
      python -m ee_asr.bin.validate_data_dir "data/$d"
    done
    stage_end 1 data "$opts"
  fi
  stage_unlock data
fi

if [ -z "$decode_batch_bins" ]; then  # the same 400 s of audio either way
  case "$feats_type" in raw|raw_online) decode_batch_bins=4000000 ;; *) decode_batch_bins=40000 ;; esac
fi

orig_train_set=$train_set
online_sp=()  # on the fly, speed is perturbed at load time: training gets the factors, no data/<set>_sp copies
feats_on_the_fly=false; case "$feats_type" in fbank_online|raw_online) feats_on_the_fly=true ;; esac
if [ "$feats_on_the_fly" = true ]; then
  # shellcheck disable=SC2086
  [ -z "$speed_perturb_factors" ] || online_sp=(--set "speed_perturb_factors=[$(echo $speed_perturb_factors | tr ' ' ,)]")
  speed_perturb_factors=""
fi
[ -z "$speed_perturb_factors" ] || train_set="${train_set}_sp"

if want 2; then
  # Per data set, so that a recipe needing other features (raw audio) or another set adds them
  # beside what other recipes of the corpus made, and what exists is never computed again.
  if [ -n "$speed_perturb_factors" ]; then
    stage_lock "data/$train_set" "stage 2 (speed perturbation)"
    if ! stage_legacy="factors=$speed_perturb_factors" stage_skip 2 "data/$train_set" "factors=$speed_perturb_factors" \
         "data/$orig_train_set"; then
      log "Stage 2: speed perturbation $speed_perturb_factors of data/$orig_train_set"
      stage_begin 2 "data/$train_set" "factors=$speed_perturb_factors" "data/$train_set"
      # shellcheck disable=SC2086
      python -m ee_asr.bin.perturb_speed --data-dir "data/$orig_train_set" --output "data/$train_set" --factors $speed_perturb_factors
      stage_end 2 "data/$train_set" "factors=$speed_perturb_factors"
    fi
    stage_unlock "data/$train_set"
  fi
  for d in $train_set $eval_sets; do
    opts="feats_type=$feats_type n_mels=$n_mels"
    stage_lock "$featdir/$d" "stage 2 ($feats_type features of $d)"
    if stage_legacy="$opts data=$(files_sig data/$d/wav.scp data/$d/segments data/$d/text)" \
         stage_skip 2 "$featdir/$d" "$opts" "data/$d"; then
      log "Stage 2: $feats_type features of $d already done with the same options and data"
      stage_unlock "$featdir/$d"
      continue
    fi
    log "Stage 2: $feats_type features of data/$d into $featdir/$d with $nj jobs"; rerun 2
    # the CMVN statistics, which trained models read, go to a new version cmvn/<sha12>/cmvn.npz
    # (cmvn.npz links to cmvn/current/cmvn.npz): never rewritten in place
    stage_begin 2 "$featdir/$d" "$opts" "$featdir/$d"/{split,log,text,utt2spk,spk2utt,wav.scp,feats.scp,utt2num_frames,segments,online_features.json}
    utils/compute_features.sh --nj "$nj" --cmd "$train_cmd" --feats-type "$feats_type" --n-mels "$n_mels" \
      "data/$d" "$featdir/$d"
    if [ "$d" = "$train_set" ]; then
      stage_output 2 "$featdir/$d" "$featdir/$d/cmvn/.new"
      rm -rf "$featdir/$d/cmvn/.new"
      stats_of="$featdir/$d/feats.scp"; [ "$feats_on_the_fly" = false ] || stats_of="$featdir/$d"
      python -m ee_asr.bin.compute_cmvn "$stats_of" "$featdir/$d/cmvn/.new/cmvn.npz"
      publish "$featdir/$d/cmvn" cmvn.npz
      # the path of the layout before versions, for readers of it; a file there is an older experiment's
      [ -f "$featdir/$d/cmvn.npz" ] && [ ! -L "$featdir/$d/cmvn.npz" ] || ln -sfn cmvn/current/cmvn.npz "$featdir/$d/cmvn.npz"
    fi
    log "  $d: $(wc -l < "$featdir/$d/utt2num_frames") utterances"
    stage_end 2 "$featdir/$d" "$opts"
    stage_unlock "$featdir/$d"
  done
fi

if want 3; then
  # a new token model goes to $bpedir/<sha12>/ and becomes $bpedir/current: experiments trained
  # on an older one keep reading theirs
  opts="token_type=$token_type nbpe=$nbpe"
  stage_lock "$bpedir" "stage 3 (token model)"
  if stage_legacy="$opts text=$(file_sig data/$train_set/text)" stage_skip 3 "$bpedir" "$opts" "data/$train_set/text"; then
    log "Stage 3: sentencepiece already trained with the same options and text"
  else
    log "Stage 3: sentencepiece $token_type with $nbpe pieces on data/$train_set/text"; rerun 3
    stage_begin 3 "$bpedir" "$opts" "$bpedir/.new"
    rm -rf "$bpedir/.new"; mkdir -p "$bpedir/.new"
    python -m ee_asr.bin.train_bpe --text "data/$train_set/text" --model-prefix "$bpedir/.new/bpe" \
      --vocab-size "$nbpe" --model-type "$token_type"
    publish "$bpedir" bpe.model
    log "  token model: $(readlink -f "$bpedir/current/bpe.model")"
    stage_end 3 "$bpedir" "$opts"
  fi
  stage_unlock "$bpedir"
  if [ "$use_lm" = true ]; then
    if [ -n "$lm_text" ]; then lm_src=(--text "$lm_text" --text-format plain); else lm_src=(--text "data/$orig_train_set/text"); fi
    lm_opts="order=$lm_order text=${lm_text:-data/$orig_train_set/text}"
    stage_lock "$lmdir" "stage 3 (word LM)"
    if stage_legacy="$lm_opts:$(file_sig "${lm_src[1]}")" stage_skip 3 "$lmdir" "$lm_opts" "${lm_src[1]}"; then
      log "Stage 3: word LM already built with the same options and text"
    else
      log "Stage 3: word ${lm_order}-gram LM on ${lm_src[1]}"
      stage_begin 3 "$lmdir" "$lm_opts" "$lmdir/.new"
      rm -rf "$lmdir/.new"
      python -m ee_asr.bin.build_lm "${lm_src[@]}" --order "$lm_order" --output "$lmdir/.new/lm.arpa"
      publish "$lmdir" lm.arpa
      stage_end 3 "$lmdir" "$lm_opts"
    fi
    stage_unlock "$lmdir"
  fi
fi

if want 4; then
  opts="procs=$num_procs nodes=$num_nodes args=${online_sp[*]+${online_sp[*]} }$train_args pretrained=$pretrained"
  legacy="config=$(file_sig "$train_config") bpe=$(file_sig "$bpedir/bpe.model") feats=$(file_sig "$featdir/$train_set/feats.scp") $opts"
  bpemodel=$(artefact "$bpedir" bpe.model)
  cmvn=$(artefact "$featdir/$train_set/cmvn" cmvn.npz "$featdir/$train_set/cmvn.npz")
  inputs=("$train_config" "$bpemodel" "$cmvn" "$featdir/$train_set" "$featdir/$valid_set" ${pretrained:+"$pretrained"})
  # the nodes of one training share $exp: node 0 holds its lock
  [ "$node_rank" -gt 0 ] || stage_lock "$exp" "stage 4 (training)"
  # Its inputs changed since it trained: training anew in place would replace the experiment
  # (and its decodes), so that is refused. Changed options (more epochs) resume it.
  done4=0; stage_refuse_changes=1 stage_legacy="$legacy" stage_skip 4 "$exp" "$opts" "${inputs[@]}" || done4=$?
  if [ "$done4" -eq 3 ]; then
    log "Stage 4: $exp was trained on other inputs (above): training it again would replace it and its"
    log "  decodes. Train beside it with --tag <new name>, or remove $exp to train it anew; to decode"
    log "  it as it is, start at --stage 5."
    exit 1
  elif [ "$done4" -eq 0 ]; then
    log "Stage 4: $exp already trained with the same options and inputs"
  else
    train_log="$exp/train.log"; [ "$num_nodes" -eq 1 ] || train_log="$exp/train.node$node_rank.log"
    log "Stage 4: training $exp with $train_config (log: $exp/train.rank0.log, launcher's: $train_log)"; rerun 4
    mkdir -p "$exp"
    rm -f "$exp/.stage4.done"  # training resumes from its own checkpoints, so nothing is removed
    # shellcheck disable=SC2206
    args=(--config "$train_config" --train-dir "$featdir/$train_set" --valid-dir "$featdir/$valid_set"
                --bpemodel "$bpemodel" --cmvn "$cmvn" --exp-dir "$exp" --device "$device"
                ${pretrained:+--pretrained "$pretrained"} ${online_sp[@]+"${online_sp[@]}"} $train_args)
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
  [ "$node_rank" -gt 0 ] || stage_unlock "$exp"
fi

if want 5; then
  opts="sets=$test_sets batch_bins=$decode_batch_bins nbest_size=$nbest_size grid=$policy_grid args=$decode_args clf=$exit_classifier_set:$exit_classifier_args max=$max_layers calib=$max_wer_increase:$calibration_confidence"
  legacy="model=$(file_sig "$exp/$inference_model") $opts"
  inputs=("$exp/$inference_model" "$exp/config.yaml")
  for d in $test_sets; do inputs+=("$featdir/$d"); done
  [[ " $policy_grid" != *" learned:"* && -z "$max_wer_increase" ]] || inputs+=("$featdir/$exit_classifier_set")
  if [ "$use_lm" = true ]; then
    lm_file=$(artefact "$lmdir" lm.arpa); inputs+=("$lm_file")
    legacy="$legacy lm=$(file_sig "$lmdir/lm.arpa"):$lm_weight:$word_score:$lm_beam_size"
    opts="$opts lm=$lm_weight:$word_score:$lm_beam_size"
    lm_file=$(readlink -f "$lm_file")  # this version, even if another recipe makes a new one meanwhile
  fi
  stage_lock "$exp" "stage 5 (decoding)"  # before anything is removed: a second decode refuses
  if stage_legacy="$legacy" stage_skip 5 "$exp" "$opts" "${inputs[@]}"; then
    log "Stage 5: decoding already done with the same options and inputs"
  else
    log "Stage 5: decoding $test_sets at every exit of $exp, then with each exit policy"; rerun 5
    rm -f "$exp/exit_classifier.json"
    if [[ " $policy_grid" == *" learned:"* ]]; then
      set -f  # the options are split into words, never globbed: a --group-regex has brackets
      # shellcheck disable=SC2086
      python -m ee_asr.bin.fit_exit_classifier --exp-dir "$exp" --data-dir "$featdir/$exit_classifier_set" \
        --model-file "$inference_model" --batch-bins "$decode_batch_bins" --device "$device" $exit_classifier_args
      set +f
    fi
    # Each set is shared among --decode-nj jobs of whole batches (one model load per job), run
    # through $decode_cmd, then merged: every utterance exactly once, the same bytes as one job.
    dgpu=0; [ "$device" = cpu ] || dgpu=1
    for d in $test_sets; do
      ddir="$exp/decode_$d"; split="$ddir/split"
      rm -rf "$split" "$ddir/log" "$ddir"/policy_*
      n=$(python -m ee_asr.bin.split_decode --data-dir "$featdir/$d" --batch-bins "$decode_batch_bins" \
            --nj "$decode_nj" --output "$split")
      # shellcheck disable=SC2086
      $decode_cmd --gpu "$dgpu" JOB=1:"$n" "$ddir/log/decode.JOB.log" \
        python -m ee_asr.bin.decode --exp-dir "$exp" --data-dir "$featdir/$d" --model-file "$inference_model" \
          --batch-bins "$decode_batch_bins" --device "$device" --nbest-size "$nbest_size" \
          --utt-list "$split/utts.JOB" --output "$split/JOB" $decode_args
      if [ -n "$policy_grid" ]; then
        # shellcheck disable=SC2086
        $decode_cmd --gpu "$dgpu" JOB=1:"$n" "$ddir/log/policy.JOB.log" \
          python -m ee_asr.bin.decode_policy --exp-dir "$exp" --data-dir "$featdir/$d" --grid $policy_grid \
            --nbest-size "$nbest_size" --model-file "$inference_model" --batch-bins "$decode_batch_bins" \
            --device "$device" --utt-list "$split/utts.JOB" --output "$split/JOB" \
            ${max_layers:+--max-layers "$max_layers"} $decode_args
      fi
      # shellcheck disable=SC2046
      python -m ee_asr.bin.merge_decodes --data-dir "$featdir/$d" --output "$ddir" $(seq -f "$split/%g" 1 "$n")
      log "  $d: $n decoding jobs merged into $ddir (their logs: $ddir/log/)"
      if [ "$use_lm" = true ]; then  # the same exits with the word LM beam, into decode_<set>_lm/
        lmddir="${ddir}_lm"; rm -rf "$lmddir/split" "$lmddir/log"
        # shellcheck disable=SC2086
        $decode_cmd --gpu "$dgpu" JOB=1:"$n" "$lmddir/log/decode.JOB.log" \
          python -m ee_asr.bin.decode --exp-dir "$exp" --data-dir "$featdir/$d" --model-file "$inference_model" \
            --batch-bins "$decode_batch_bins" --device "$device" --nbest-size "$nbest_size" $decode_args \
            --lm "$lm_file" --lm-weight "$lm_weight" --word-score "$word_score" --beam-size "$lm_beam_size" \
            --utt-list "$split/utts.JOB" --output "$lmddir/split/JOB"
        # shellcheck disable=SC2046
        python -m ee_asr.bin.merge_decodes --data-dir "$featdir/$d" --output "$lmddir" $(seq -f "$lmddir/split/%g" 1 "$n")
        rm -rf "$lmddir/split"
      fi
      rm -rf "$split"
    done
    rm -f "$exp/calibration.json"
    if [ -n "$max_wer_increase" ]; then  # Learn-then-Test on the calibration set's per-exit records
      cset=$exit_classifier_set; cdir="$exp/decode_$cset"
      if [ ! -f "$cdir/exits.jsonl" ]; then
        cdir="$exp/calibration_data/$cset"
        # shellcheck disable=SC2086
        python -m ee_asr.bin.decode --exp-dir "$exp" --data-dir "$featdir/$cset" --model-file "$inference_model" \
          --batch-bins "$decode_batch_bins" --device "$device" --nbest-size "$nbest_size" --output "$cdir" $decode_args
      fi
      policies=$(for g in $policy_grid; do echo "${g%%:*}"; done | sort -u | tr '\n' ' ')
      # shellcheck disable=SC2086
      python -m ee_asr.bin.calibrate_exits "$cdir/exits.jsonl" --policy ${policies:-fixed} --max-wer-increase $max_wer_increase \
        --confidence "$calibration_confidence" --output "$exp/calibration.json" \
        $([ -f "$exp/exit_classifier.json" ] && echo --classifier "$exp/exit_classifier.json")
    fi
    stage_end 5 "$exp" "$opts"
  fi
  stage_unlock "$exp"
fi

if want 6; then
  stage_lock "$exp" "stage 6 (scoring)"
  inputs=(); for d in "$exp"/decode_*; do [ ! -d "$d" ] || inputs+=("$d"); done
  if stage_skip 6 "$exp" "scored skip=$blank_skip_sweep" "${inputs[@]}" && [ -f "$exp/RESULTS.md" ]; then
    log "Stage 6: $exp/RESULTS.md already scored from the same decodes"
  else
    log "Stage 6: scoring $exp"; rerun 6
    python -m ee_asr.bin.score --exp-dir "$exp"
    if [ -n "$blank_skip_sweep" ]; then  # time vs WER: exits alone, skipping alone and both
      first_test=${test_sets%% *}
      # shellcheck disable=SC2046,SC2086
      python -m ee_asr.bin.benchmark_blank_skip --exp-dir "$exp" --data-dir "$featdir/$first_test" \
        --blank-skip-after "${blank_skip_sweep%%:*}" --blank-skip-threshold $(echo "${blank_skip_sweep#*:}" | tr , ' ') \
        --points $(echo "$policy_grid" | tr ' ' '\n' | grep -v '^fixed:' | grep -v '^$') --repeats 1 \
        --output "$exp/blank_skip.json" --plot "$exp/blank_skip.png" > "$exp/blank_skip.md"
      { echo; echo "## Blank frames dropped above an exit ($first_test)"; echo; cat "$exp/blank_skip.md"
        echo; echo "![time vs WER](blank_skip.png)"; } >> "$exp/RESULTS.md"
    fi
    stage_end 6 "$exp" "scored skip=$blank_skip_sweep"
  fi
  stage_unlock "$exp"
fi
if want 7; then
  first_test=${test_sets%% *}
  opts="int8=$export_int8 max_cer=$export_max_cer_increase data=$first_test sherpa=$export_sherpa_exits"
  inputs=("$exp/$inference_model" "$exp/config.yaml"); [ "$export_int8" != true ] || inputs+=("$featdir/$first_test")
  stage_lock "$exp" "stage 7 (ONNX export)"
  if stage_legacy="model=$(file_sig "$exp/$inference_model") $opts" stage_skip 7 "$exp/onnx" "$opts" "${inputs[@]}"; then
    log "Stage 7: ONNX export already done with the same options and inputs"
  else
    log "Stage 7: exporting $exp to ONNX in $exp/onnx"; rerun 7
    stage_begin 7 "$exp/onnx" "$opts"
    args=(--exp-dir "$exp" --model-file "$inference_model")
    if [ "$export_int8" = true ]; then
      args+=(--int8 --data-dir "$featdir/$first_test" --max-cer-increase "$export_max_cer_increase")
    fi
    # shellcheck disable=SC2206
    [ -z "$export_sherpa_exits" ] || args+=(--sherpa-exit $export_sherpa_exits)
    python -m ee_asr.bin.export_onnx "${args[@]}"
    stage_end 7 "$exp/onnx" "$opts"
  fi
  stage_unlock "$exp"
fi
log "Successfully finished stages $stage-$stop_stage. [elapsed=${SECONDS}s]"
