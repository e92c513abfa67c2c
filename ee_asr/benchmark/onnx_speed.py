"""What the ONNX export buys on a CPU, measured within one run (one thread, measurements
interleaved and repeated, the minimum kept, because a shared machine is noisy):
- per exit, time to the exit's greedy output: PyTorch eager vs ORT fp32 vs ORT int8, and ratios;
- size of the graphs a device needs to reach each exit (segments 1..k), fp32 and int8;
- peak RSS of a fresh process that loads segments 1..k and decodes a 10 s input (and of the
  PyTorch path loading the whole model);
- the runtime's dynamic policies (int8 graphs when exported) over a grid of thresholds: time
  against the last exit, and the mean exit.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ee_asr.common.atomic import atomic_write_text
from ee_asr.decode.torch_backend import TorchBackend
from ee_asr.deploy.onnx_backend import OnnxBackend, onnx_engine
from ee_asr.exits.ctc_greedy import greedy_ids
from ee_asr.exits.policies import Policy, parse_grid
from ee_asr.export.int8_check import read_dump

ROOT = Path(__file__).resolve().parents[2]
TEN_SECONDS = 1000  # feature frames


def synthetic_feats(num, frames=TEN_SECONDS, dim=80, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((frames, dim)).astype(np.float32) for _ in range(num)]


def greedy_upto(backend, inputs, layer):
    """The greedy ids at exit `layer` of one utterance, through any backend of the exit engine."""
    state = backend.start(inputs)
    index = backend.exit_layers.index(layer)
    for i in range(index + 1):
        state = backend.advance(state, i)
    return greedy_ids(*backend.log_probs(state, index))[0]


def time_exits(model, rt32, rt8, utts, repeats):
    """{exit: {torch, ort_fp32, ort_int8 (seconds, all utterances one by one), ratios}}."""
    torch_backend = TorchBackend(model)
    runners = {"torch": lambda f, e: greedy_upto(torch_backend, (torch.tensor(f)[None], torch.tensor([len(f)])), e),
               "ort_fp32": lambda f, e: greedy_upto(rt32, [f], e)}
    if rt8 is not None:
        runners["ort_int8"] = lambda f, e: greedy_upto(rt8, [f], e)
    best = {e: {k: float("inf") for k in runners} for e in rt32.exit_layers}
    for _ in range(repeats):
        for e in rt32.exit_layers:
            for name, run in runners.items():
                start = time.perf_counter()
                for f in utts:
                    run(f, e)
                best[e][name] = min(best[e][name], time.perf_counter() - start)
    out = {}
    for e, t in best.items():
        out[e] = {**{k: round(v, 4) for k, v in t.items()},
                  **{f"{k}_vs_torch": round(v / t["torch"], 3) for k, v in t.items() if k != "torch"}}
    return out


def sizes(onnx_dir, manifest):
    """MB a device needs to reach each exit: segments 1..k, fp32 and int8, plus the token model
    and the manifest (a deployment of exit k needs nothing else)."""
    extra = sum(os.path.getsize(Path(onnx_dir) / f) for f in (manifest["token_model"], "manifest.json"))
    out, total = {}, {"fp32": extra, "int8": extra}
    for seg in manifest["segments"]:
        for kind in total:
            if kind in seg:
                total[kind] += os.path.getsize(Path(onnx_dir) / seg[kind])
        out[seg["exit"]] = {f"{k}_mb": round(v / 1e6, 2) for k, v in total.items() if v > extra}
    return out


# VmHWM, the peak resident set of this process's memory map: ru_maxrss would also count the
# parent's pages at fork time (Linux carries the maximum across exec)
PEAK = """
def HWM():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""
RSS_ONNX = PEAK + """
import sys
import numpy as np
from ee_asr.deploy.onnx_backend import onnx_engine
from ee_asr.exits.policies import Policy
d, layer, int8, dim = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
engine = onnx_engine(d, max_layers=layer, int8=int8)
x = np.random.default_rng(0).standard_normal((1000, dim)).astype(np.float32)
engine.decode([x], Policy("fixed", layer))
print(HWM(), "torch" in sys.modules)
"""
RSS_TORCH = PEAK + """
import sys
import torch
torch.set_num_threads(1)
from ee_asr.decode.torch_backend import torch_engine
from ee_asr.exits.policies import Policy
from ee_asr.models.load import load_trained
model, config = load_trained(sys.argv[1], sys.argv[2])
x = torch.randn(1, 1000, config["input_size"])
torch_engine(model).decode((x, torch.tensor([1000])), Policy("fixed", model.encoder.exit_layers[-1]))
print(HWM(), True)
"""


def _peak_rss_mb(code, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"peak RSS probe failed: {proc.stderr[-2000:]}")
    kb, torch_loaded = proc.stdout.split()[-2:]
    return round(int(kb) / 1024, 1), torch_loaded == "True"


def peak_rss(onnx_dir, manifest, exp_dir, model_file, has_int8):
    dim = manifest["fbank"]["num_mel_bins"]
    out = {}
    for e in manifest["exit_layers"]:
        row = {"ort_fp32_mb": _peak_rss_mb(RSS_ONNX, onnx_dir, e, 0, dim)[0]}
        if has_int8:
            row["ort_int8_mb"] = _peak_rss_mb(RSS_ONNX, onnx_dir, e, 1, dim)[0]
        out[e] = row
    out["torch_all_exits_mb"] = _peak_rss_mb(RSS_TORCH, exp_dir, model_file)[0]
    return out


DEFAULT_GRID = ["entropy:0.02,0.05,0.1", "maxprob:0.9,0.95,0.98", "nbest:0.5,0.8,0.95"]  # asr.sh's policy_grid


def time_policies(onnx_dir, int8, utts, grid, repeats):
    """Each (policy, threshold) of `grid` ([(policy, [thresholds])]), utterances one by one:
    seconds, ratio to the last exit, mean exit."""
    engines = {p: onnx_engine(onnx_dir, int8=int8, policy=p) for p, _ in grid + [("fixed", None)]}
    last = engines["fixed"].exit_layers[-1]
    points = [("fixed", last)] + [(p, t) for p, ts in grid for t in ts if (p, t) != ("fixed", last)]
    best, exits = {p: float("inf") for p in points}, {}
    for _ in range(repeats):
        for p in points:
            start = time.perf_counter()
            res = [engines[p[0]].decode([f], Policy(*p))[0] for f in utts]
            best[p] = min(best[p], time.perf_counter() - start)
            exits[p] = float(np.mean([r["exit"] for r in res]))
    full = best[points[0]]
    return [{"policy": p, "threshold": t, "seconds": round(best[(p, t)], 4),
             "ratio": round(best[(p, t)] / full, 3), "mean_exit": round(exits[(p, t)], 2)} for p, t in points]


def markdown(report):
    lines = [f"# ONNX benchmark: {report['what']}", "",
             f"{report['inputs']}; 1 thread; minimum of {report['repeats']} interleaved repeats.", "",
             "| exit | PyTorch s | ORT fp32 s | ORT int8 s | fp32/PyTorch | int8/PyTorch | deploy fp32 MB "
             "| deploy int8 MB |"
             " peak RSS fp32 MB | peak RSS int8 MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for e, t in report["time"].items():
        s, r = report["size"].get(e, {}), report.get("peak_rss", {}).get(e, {})
        lines.append(f"| {e} | {t['torch']:.3f} | {t['ort_fp32']:.3f} | {t.get('ort_int8', float('nan')):.3f} | "
                     f"{t['ort_fp32_vs_torch']:.2f} | {t.get('ort_int8_vs_torch', float('nan')):.2f} | "
                     f"{s.get('fp32_mb', '-')} | {s.get('int8_mb', '-')} | {r.get('ort_fp32_mb', '-')} | "
                     f"{r.get('ort_int8_mb', '-')} |")
    if "peak_rss" in report:
        lines += ["", f"PyTorch path, whole model, 10 s input: peak RSS {report['peak_rss']['torch_all_exits_mb']} MB."]
    if report.get("policies"):
        lines += ["", "| policy | threshold | seconds | ratio to last exit | mean exit |", "|---|---|---|---|---|"]
        lines += [f"| {p['policy']} | {p['threshold']} | {p['seconds']:.3f} | {p['ratio']:.2f} | {p['mean_exit']} |"
                  for p in report["policies"]]
    return "\n".join(lines) + "\n"


def run_benchmark(exp_dir, onnx_dir, output, data_dir=None, max_utts=20, repeats=3, model_file="model.pth",
                  what=None, rss=True, grid=None):
    from ee_asr.models.load import load_trained

    torch.set_num_threads(1)
    model, _ = load_trained(exp_dir, model_file)
    rt32 = OnnxBackend(onnx_dir)
    has_int8 = all("int8" in s for s in rt32.manifest["segments"])
    rt8 = OnnxBackend(onnx_dir, int8=True) if has_int8 else None
    if data_dir:
        utts = [f for _, f, _ in read_dump(data_dir, max_utts)]
        inputs = f"{len(utts)} utterances of {data_dir} ({sum(map(len, utts)) / 100:.1f} s), one at a time"
    else:
        utts = synthetic_feats(1, dim=rt32.manifest["fbank"]["num_mel_bins"])
        inputs = "one 10 s input (random features)"
    report = {"what": what or str(exp_dir), "inputs": inputs, "repeats": repeats,
              "time": time_exits(model, rt32, rt8, utts, repeats), "size": sizes(onnx_dir, rt32.manifest)}
    if rss:
        report["peak_rss"] = peak_rss(onnx_dir, rt32.manifest, exp_dir, model_file, has_int8)
    if data_dir:
        report["policies"] = time_policies(onnx_dir, has_int8, utts, parse_grid(grid or DEFAULT_GRID), repeats)
        report["policies_backend"] = "ort_int8" if rt8 else "ort_fp32"
    output = Path(output)
    atomic_write_text(output, json.dumps(report, indent=1) + "\n")
    atomic_write_text(output.with_suffix(".md"), markdown(report))
    return report
