#!/usr/bin/env bash
# The mini corpus: synthesise multi-speaker English speech with Debian's TTS engines into
# data/{train,dev,test}. Test speakers and test sentences are held out from training.
set -euo pipefail
. ./path.sh
. utils/log.sh

size=demo           # tiny (~200 utterances, seconds), small (~1.8k) or demo (~9.5k, ~2 min)
vocab_size=1000     # keep sentences whose words are all among the N most frequent
num_train=""        # training utterances instead of the size's
espeak_speakers=60  # espeak-ng training speakers (accent, variant, pitch, rate)
train_fragments=true   # training texts also from in-vocabulary runs inside longer sentences: distinct
                       # texts instead of ~1,450 sentences said many times, which a model learns by heart
seed=1              # the same seed gives the same corpus
nj=2                # synthesis processes
wav_dir=downloads/mini_tts  # where the audio goes
text_file=""        # your own sentences (one per line) instead of Debian's text
help_message="Usage: $0 [--size tiny|small|demo] [--vocab-size N] [--num-train N] [--espeak-speakers N] [--train-fragments true|false] [--seed N] [--nj N]"
. utils/parse_options.sh

log "synthesising the $size mini corpus into data/ (audio in $wav_dir)"
python -m ee_asr.bin.make_mini_corpus --data-dir data --wav-dir "$wav_dir" --size "$size" \
  --vocab-size "$vocab_size" --espeak-speakers "$espeak_speakers" ${num_train:+--num-train "$num_train"} \
  --train-fragments "$train_fragments" \
  --seed "$seed" --nj "$nj" ${text_file:+--text-file "$text_file"}
