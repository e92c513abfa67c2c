#!/usr/bin/env bash
# Make a new recipe: egs/TEMPLATE/setup.sh egs/<corpus>/<architecture>_<regime>
# Links the stage script, utils and path.sh, and data/, dump/ and downloads/ to the corpus's
# (shared by its recipes); copies cmd.sh (edit it for your cluster); writes a run.sh, a
# conf/train_conformer_ctc_ee.yaml to edit, and a local/data.sh to fill in.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "Usage: $0 egs/<corpus>/<recipe>" >&2; exit 1
fi
dir=$1
template=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
if [ -e "$dir" ]; then echo "$0: $dir already exists" >&2; exit 1; fi
mkdir -p "$dir/conf" "$dir/local"
rel=$(realpath --relative-to="$dir" "$template")
ln -s "$rel/asr.sh" "$dir/asr.sh"
ln -s "$rel/path.sh" "$dir/path.sh"
ln -s "$(realpath --relative-to="$dir" "$template/../../utils")" "$dir/utils"
for d in data dump downloads; do ln -s "../$d" "$dir/$d"; done
cp "$template/cmd.sh" "$dir/cmd.sh"
cp "$template/../../conf/train_conformer_ctc_ee.yaml" "$dir/conf/train_conformer_ctc_ee.yaml"
cat > "$dir/run.sh" <<'RUN'
#!/usr/bin/env bash
# Early-exit ASR recipe; every asr.sh option can be given here or on the command line.
set -euo pipefail

./asr.sh \
  --train-set train \
  --valid-set dev \
  --test-sets "test" \
  --nbpe 300 \
  --train-config conf/train_conformer_ctc_ee.yaml \
  "$@"
RUN
cat > "$dir/local/data.sh" <<'DATA'
#!/usr/bin/env bash
# Write Kaldi data dirs data/{train,dev,test} (wav.scp text utt2spk spk2utt, C-sorted) for this corpus.
set -euo pipefail
echo "$0: write the corpus preparation here" >&2
exit 1
DATA
chmod +x "$dir/run.sh" "$dir/local/data.sh"
echo "made $dir: fill in $dir/local/data.sh and $dir/conf/train_conformer_ctc_ee.yaml"
