"""One table across experiments: rows are experiments, columns exits, per test set, plus
difference rows with their paired bootstrap intervals.

An experiment counts as *single-exit* when its loss weights are zero at every exit but the last
(one exit, or the `conformer_ctc_single` / `*_finetune` style); its last exit is the single-exit
baseline at that depth. Every other experiment is *early-exit* and gets a difference row against
that baseline; with a reference experiment, every other one gets a row against it, exit by exit.
A difference is paired (the same test utterances, each system's errors per utterance from
decode_<set>/exits.jsonl) and shown in bold when its 95% interval excludes zero.
"""

import json
import re
from pathlib import Path

import numpy as np

from ee_asr.common.errors import UserError
from ee_asr.common.lines import read_lines
from ee_asr.common.yaml_file import read_yaml_mapping
from ee_asr.score.significance import bootstrap_count_chunks

KEY = re.compile(r"^decode_(?P<set>.+)/wer_exit(?P<layer>\d+)$")


def read_utterance_errors(decode_dir):
    """{layer: {utt: (word errors, reference words)}} from exits.jsonl, or {} where there is none."""
    path = Path(decode_dir) / "exits.jsonl"
    if not path.is_file():
        return {}
    out = {}
    for n, line in read_lines(path):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            out.setdefault(int(r["exit"]), {})[r["utt"]] = (float(r["errors"]), float(r["ref_words"]))
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"{path}:{n}: not an exit record ({e})") from None
    return out


def _read_json_mapping(path):
    """The JSON mapping in `path`; UserError naming the file when it is not one."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: cannot be parsed ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: holds {type(data).__name__}, not a mapping")
    return data


def read_experiment(exp_dir):
    """{name, wers {set: {layer: wer}}, utts {set: {layer: {utt: (errors, words)}}}, layers, single}."""
    exp = Path(exp_dir)
    results, config = exp / "results.json", exp / "config.yaml"
    if not results.is_file() or not config.is_file():
        raise UserError(f"{exp}: no results.json/config.yaml (train, decode and score it: stages 4-6)")
    wers = {}
    for key, value in _read_json_mapping(results).items():
        m = KEY.match(key)
        if m:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"{results}: '{key}' is {value!r}, not a WER")
            wers.setdefault(m["set"], {})[int(m["layer"])] = float(value)
    conf = read_yaml_mapping(config, "experiment config")
    try:
        layers = [int(x) for x in (conf.get("encoder_conf") or {}).get("exit_layers", [])] or \
            sorted({layer for per_set in wers.values() for layer in per_set})
        weights = (conf.get("model_conf") or {}).get("exit_weighting", "equal")
        single = len(layers) == 1 or (isinstance(weights, list) and all(float(w) == 0 for w in weights[:-1]))
    except (AttributeError, TypeError, ValueError) as e:
        raise UserError(f"{config}: encoder_conf.exit_layers or model_conf.exit_weighting not understood ({e})") \
            from None
    # recipe/tag reads better than the full path, and is unique across a corpus's recipes
    name = f"{exp.parent.parent.name}/{exp.name}" if exp.parent.name == "exp" else str(exp)
    utts = {s: read_utterance_errors(exp / f"decode_{s}") for s in wers}
    return {"name": name, "wers": wers, "utts": utts, "layers": layers, "single": single}


def paired_difference(a, b, resamples=1000, seed=0):
    """WER(a) - WER(b) over the utterances both decoded, and its 95% paired bootstrap interval;
    a, b: {utt: (errors, words)}. None where they share no utterance."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    ea, eb = (np.array([d[u][0] for u in common]) for d in (a, b))
    words = np.array([a[u][1] for u in common])
    diff = 100.0 * (ea.sum() - eb.sum()) / max(words.sum(), 1)
    draws = np.concatenate([100.0 * (c @ (ea - eb)) / np.maximum(c @ words, 1)
                            for c in bootstrap_count_chunks(len(common), resamples, seed)])
    return diff, tuple(np.percentile(draws, [2.5, 97.5]))


def _fmt(v):
    return "-" if v is None else f"{v:.1f}"


def _diff_cell(value, utts_a, utts_b):
    if value is None:
        return "-"
    paired = paired_difference(utts_a, utts_b) if utts_a and utts_b else None
    if paired is None:
        return f"{value:+.1f}"
    diff, (lo, hi) = paired
    text = f"{diff:+.1f}"
    return (f"**{text}**" if lo > 0 or hi < 0 else text) + f" ({lo:+.1f} .. {hi:+.1f})"


def _row(cells):
    return "|" + "|".join(cells) + "|"


def compare_table(exp_dirs, reference=None):
    exps = [read_experiment(d) for d in exp_dirs]
    if not exps:
        raise UserError("no experiments given")
    ref = read_experiment(reference) if reference else None
    if ref and all(e["name"] != ref["name"] for e in exps):
        exps.insert(0, ref)
    sets = sorted({s for e in exps for s in e["wers"]})
    out = ["# Early-exit comparison (WER %)", "",
           "Differences: paired bootstrap over the utterances both decoded (1,000 draws), 95% interval "
           "in brackets, bold where it excludes zero.", ""]
    for test_set in sets:
        layers = sorted({layer for e in exps for layer in e["wers"].get(test_set, {})})
        out += [f"## {test_set}", "", "|experiment|kind|" + "|".join(f"exit {L}" for L in layers) + "|",
                "|---|---|" + "---|" * len(layers)]
        for e in exps:
            row = e["wers"].get(test_set, {})
            kind = "single-exit" if e["single"] else "early-exit"
            out.append(_row([e["name"], kind] + [_fmt(row.get(L)) for L in layers]))
        out += _reference_rows(exps, ref, test_set, layers) if ref else _baseline_rows(exps, test_set, layers)
        out.append("")
    return "\n".join(out)


def _reference_rows(exps, ref, test_set, layers):
    base, base_utts = ref["wers"].get(test_set, {}), ref["utts"].get(test_set, {})
    return [_difference_row(e, test_set, layers, base, base_utts, ref["name"])
            for e in exps if e["name"] != ref["name"]]


def _difference_row(e, test_set, layers, base, base_utts, base_name):
    """Experiment e minus the per-exit WERs `base` (per-utterance errors `base_utts`), exit by exit."""
    row, utts = e["wers"].get(test_set, {}), e["utts"].get(test_set, {})
    cells = [_diff_cell(row[L] - base[L] if L in row and L in base else None, utts.get(L), base_utts.get(L))
             for L in layers]
    return _row([f"{e['name']} minus {base_name}", "difference"] + cells)


def _baseline_rows(exps, test_set, layers):
    baseline, base_utts = {}, {}
    for e in exps:
        if e["single"] and e["layers"] and e["layers"][-1] in e["wers"].get(test_set, {}):
            depth = e["layers"][-1]
            baseline[depth] = e["wers"][test_set][depth]
            base_utts[depth] = e["utts"].get(test_set, {}).get(depth)
    if not baseline:
        return []
    rows = [_row(["single-exit baseline (last exit of each)", "single-exit"] + [_fmt(baseline.get(L)) for L in layers])]
    return rows + [_difference_row(e, test_set, layers, baseline, base_utts, "single-exit")
                   for e in exps if not e["single"]]
