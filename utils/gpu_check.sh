#!/usr/bin/env bash
# Every GPU measurement of the training-at-scale work in one run (`make gpu-check`), sized for about 8 minutes
# on one GPU, one JSON: gpu_check/gpu_check.json (each step's JSON beside it, and its log).
#   1. paper-shape train throughput: ours fp32 vs bf16 AMP vs ESPnet's InterCTC model (bin.benchmark_train)
#   2. the loader's wait with 0, 2 and 4 workers, from the dump and with fbank on the fly
#   3. one epoch of the tiny LibriSpeech replica's real recipe on the GPU, fp32 and with AMP
#   4. decoding time per exit and online policies against the fixed exits (bin.benchmark)
# A step that fails is recorded as failed; the others still run. DEVICE=cpu runs the same on a CPU;
# SKIP="train_throughput loader_wait" leaves those steps out.
set -uo pipefail
cd "$(dirname "$0")/.."
device=${DEVICE:-cuda}
out=${OUT_DIR:-gpu_check}
py=${PYTHON_BIN:-.venv/bin/python}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
status=()

step() {  # step NAME TIMEOUT_S COMMAND...: run, log, record ok/failed with the seconds taken
  local name=$1 limit=$2; shift 2
  local start; start=$(date +%s)
  if [[ " ${SKIP:-} " == *" $name "* ]]; then status+=("\"$name\": {\"result\": \"skipped\"}"); return; fi
  echo "== $name ($(date -u +%H:%M:%S))"
  if timeout "$limit" "$@" > "$out/$name.log" 2>&1; then r=ok; else r="failed($?)"; fi
  status+=("\"$name\": {\"result\": \"$r\", \"seconds\": $(( $(date +%s) - start ))}")
  echo "   $r in $(( $(date +%s) - start ))s (log: $out/$name.log)"
}

step train_throughput 150 "$py" -m ee_asr.bin.benchmark_train --config conf/train_conformer_ctc_ee.yaml \
  --device "$device" --vocab-size 256 --steps 10 --repeats 3 --output "$out/train_throughput.json"

# a tiny replica of LibriSpeech through its real recipe: stages 1-3 (fbank on the fly, the default)
replica=$out/replica
recipe=$out/librispeech_recipe
src=egs/librispeech/conformer_ctc_ee
step replica_prepare 120 bash -c "
  rm -rf '$recipe' && mkdir -p '$recipe'/{data,dump,downloads} &&
  cp -L $src/run.sh $src/cmd.sh '$recipe/' && cp -rL $src/conf $src/local '$recipe/' &&
  for f in asr.sh path.sh utils; do ln -s \"\$(readlink -f $src/\$f)\" '$recipe/'\$f; done &&
  $py -m ee_asr.bin.make_replica librispeech --output '$replica' --size tiny &&
  cd '$recipe' && ./run.sh --local-data-opts '--download-dir $replica --download false' --nbpe 100 --stop-stage 3"

step loader_wait 120 "$py" -m ee_asr.bin.benchmark_train --config conf/train_conformer_ctc_ee.yaml --device "$device" \
  --skip-models --data-dir "$recipe/dump/fbank_online/train" --online-data-dir "$recipe/dump/fbank_online/train" \
  --bpemodel "$recipe/data/token_list/unigram100/bpe.model" --workers 0 2 4 --loader-steps 20 \
  --output "$out/loader_wait.json"

small="--set encoder_conf.num_blocks=4 --set encoder_conf.exit_layers=[2,4] --set max_epoch=1"
for amp in false true; do
  step "replica_epoch_amp_$amp" 90 bash -c "cd '$recipe' && ./run.sh --stage 4 --stop-stage 4 --device $device \
    --nbpe 100 --tag amp_$amp --train-args '$small --set use_amp=$amp'"
done

step decode_per_exit 90 "$py" -m ee_asr.bin.benchmark --exp-dir "$recipe/exp/amp_false" \
  --data-dir "$recipe/dump/fbank_online/test_clean" --device "$device" --train-steps 0 --repeats 2 --max-utts 100 \
  --output "$out/decode_per_exit.json"

"$py" - "$out" "$device" "${status[@]}" <<'EOF'
import json, sys
from pathlib import Path
out, device, status = Path(sys.argv[1]), sys.argv[2], json.loads("{" + ", ".join(sys.argv[3:]) + "}")
card = "cpu"
if device.startswith("cuda"):
    import torch
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device visible"
report = {"device": card, "steps": status}
for name in ("train_throughput", "loader_wait", "decode_per_exit"):
    path = out / f"{name}.json"
    if path.is_file():
        report[name] = json.loads(path.read_text())
for log in sorted(out.glob("replica_epoch_amp_*.log")):
    report[log.stem] = [line for line in log.read_text().splitlines() if "epoch" in line and "done" in line][-3:]
(out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
print(f"wrote {out / 'gpu_check.json'} ({card})")
EOF
