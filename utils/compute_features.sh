#!/usr/bin/env bash
# Stage 2 for one data dir: features as --nj parallel jobs through the job runner (--cmd), merged
# into OUT_DIR/{feats.scp,utt2num_frames}, with the data dir's tables copied beside them.
#   utils/compute_features.sh [--nj 2] [--cmd utils/run_local.sh] [--feats-type fbank] [--n-mels 80] DATA_DIR OUT_DIR
# The work is python -m ee_asr.bin.compute_features (ee_asr/data/features.py, on the fly
# ee_asr/data/online_features.py).
set -euo pipefail
nj=2                  # parallel jobs (at most one per utterance)
cmd=utils/run_local.sh  # job runner, called as $cmd JOB=1:N log command
feats_type=fbank      # fbank (log-mel), raw (the waveform), or fbank_online / raw_online (lengths and CMVN
                      # sums only: training computes fbank / the waveform from the audio)
n_mels=80             # log-mel fbank dimension
help_message="Usage: $0 [--nj N] [--cmd CMD] [--feats-type fbank|raw|fbank_online|raw_online] [--n-mels N] <data-dir> <out-dir>"
. utils/parse_options.sh
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
data=$1; out=$2
case "$feats_type" in
  fbank|raw) online=false ;;
  fbank_online|raw_online) online=true ;;
  *) echo "$0: --feats-type must be fbank, raw, fbank_online or raw_online, not '$feats_type'" >&2; exit 1 ;;
esac

mkdir -p "$out/split"
for f in text utt2spk spk2utt wav.scp; do cp "$data/$f" "$out/"; done
# an on-the-fly dump reads the audio when training: it keeps where each utterance lies in it
if [ "$online" = true ] && [ -f "$data/segments" ]; then cp "$data/segments" "$out/"; fi
n=$(wc -l < "$data/text"); nj=$(( nj < n ? nj : n ))
if [ -f "$data/segments" ]; then
  utils/split_scp.sh "$data/segments" "$nj" "$out/split/segments"
  seg_opt="--segments $out/split/segments.JOB"
  wav_of_job="$data/wav.scp"  # every job reads the whole wav.scp, its segments pick the audio
else
  utils/split_scp.sh "$data/wav.scp" "$nj" "$out/split/wav"
  seg_opt=""; wav_of_job="$out/split/wav.JOB"
fi
# shellcheck disable=SC2086
$cmd JOB=1:"$nj" "$out/log/features.JOB.log" \
  python -m ee_asr.bin.compute_features --wav-scp "$wav_of_job" $seg_opt \
    --out-prefix "$out/split/feats.JOB" --num-mel-bins "$n_mels" --feats-type "$feats_type"
for ((j = 1; j <= nj; j++)); do cat "$out/split/feats.$j.num_frames"; done > "$out/utt2num_frames.tmp"
# no features on the fly: data/online_features.py computes them from the audio as this file says
if [ "$online" = true ]; then
  python -m ee_asr.bin.compute_features --feats-type "$feats_type" --num-mel-bins "$n_mels" --online-conf-dir "$out"
else
  for ((j = 1; j <= nj; j++)); do cat "$out/split/feats.$j.scp"; done > "$out/feats.scp.tmp"
  mv "$out/feats.scp.tmp" "$out/feats.scp"
fi
mv "$out/utt2num_frames.tmp" "$out/utt2num_frames"
