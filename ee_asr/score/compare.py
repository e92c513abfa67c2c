"""One table across experiments: rows are experiments, columns exits, per test set, plus the
early-exit-minus-single-exit WER difference per depth.

An experiment counts as *single-exit* when its loss weights are zero at every exit but the last
(one exit, or the `conformer_ctc_single` / `*_finetune` style); its last exit is the single-exit
baseline at that depth. Every other experiment is *early-exit* and gets a difference row.
"""

import json
import re
from pathlib import Path

import yaml

from ee_asr.common.errors import UserError

KEY = re.compile(r"^decode_(?P<set>.+)/wer_exit(?P<layer>\d+)$")


def read_experiment(exp_dir):
    """(name, {set: {layer: wer}}, exit layers, single-exit?) from results.json and config.yaml."""
    exp = Path(exp_dir)
    results, config = exp / "results.json", exp / "config.yaml"
    if not results.is_file() or not config.is_file():
        raise UserError(f"{exp}: no results.json/config.yaml (train, decode and score it: stages 4-6)")
    wers = {}
    for key, value in json.loads(results.read_text()).items():
        m = KEY.match(key)
        if m:
            wers.setdefault(m["set"], {})[int(m["layer"])] = float(value)
    conf = yaml.safe_load(config.read_text())
    layers = [int(x) for x in conf.get("encoder_conf", {}).get("exit_layers", [])] or \
        sorted({layer for per_set in wers.values() for layer in per_set})
    weights = (conf.get("model_conf") or {}).get("exit_weighting", "equal")
    single = len(layers) == 1 or (isinstance(weights, list) and all(float(w) == 0 for w in weights[:-1]))
    # recipe/tag reads better than the full path, and is unique across a corpus's recipes
    name = f"{exp.parent.parent.name}/{exp.name}" if exp.parent.name == "exp" else str(exp)
    return name, wers, layers, single


def _fmt(v):
    return "-" if v is None else f"{v:.1f}"


def compare_table(exp_dirs):
    exps = [read_experiment(d) for d in exp_dirs]
    if not exps:
        raise UserError("no experiments given")
    sets = sorted({s for _, wers, _, _ in exps for s in wers})
    out = ["# Early-exit comparison (WER %)", ""]
    for test_set in sets:
        layers = sorted({layer for _, wers, _, _ in exps for layer in wers.get(test_set, {})})
        baseline = {}
        for _, wers, exits, single in exps:
            if single and exits and exits[-1] in wers.get(test_set, {}):
                baseline[exits[-1]] = wers[test_set][exits[-1]]
        out += [f"## {test_set}", "", "|experiment|kind|" + "|".join(f"exit {L}" for L in layers) + "|",
                "|---|---|" + "---|" * len(layers)]
        for name, wers, _, single in exps:
            row = wers.get(test_set, {})
            kind = "single-exit" if single else "early-exit"
            out.append(f"|{name}|{kind}|" + "|".join(_fmt(row.get(L)) for L in layers) + "|")
        if baseline:
            out.append("|single-exit baseline (last exit of each)|single-exit|"
                       + "|".join(_fmt(baseline.get(L)) for L in layers) + "|")
            for name, wers, _, single in exps:
                if single:
                    continue
                row = wers.get(test_set, {})
                diffs = [None if L not in row or L not in baseline else row[L] - baseline[L] for L in layers]
                out.append(f"|{name} minus single-exit|difference|"
                           + "|".join("-" if d is None else f"{d:+.1f}" for d in diffs) + "|")
        out.append("")
    return "\n".join(out)
