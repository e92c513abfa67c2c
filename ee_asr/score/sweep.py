"""Offline exit selection over per-utterance, per-exit records: the WER-versus-compute trade-off.

Input records (JSON lines, checked by score/sweep_input.py) have `utt`, `exit` (encoder layer),
`ref_words`, `errors` and score fields (`entropy`, `maxprob`, `seq_posterior`, `disagreement`,
`nbest_posterior`, `p_as_good`, ...). For each threshold every utterance takes the first exit at
which the policy stops (else the last exit, or the deepest within `max_layers`), and the
operating point reports WER = sum(errors) / sum(ref_words) over the chosen exits, the mean exit
layer, and the encoder compute relative to the last exit, counted in layers: mean exit layer /
last exit layer.
"""

import math
from collections import defaultdict

from ee_asr.common.edit_ops import error_rate
from ee_asr.common.errors import UserError
from ee_asr.exits.policies import LAYER_POLICIES, RULES, check_policy, last_exit, stops_at


def group_by_utterance(records, source="the sweep input"):
    by_utt = defaultdict(dict)
    for r in records:
        for key in ("utt", "exit", "ref_words", "errors"):
            if key not in r:
                raise UserError(f"{source}: record {r.get('utt', '?')} has no '{key}' field")
        if int(r["exit"]) in by_utt[r["utt"]]:
            raise UserError(f"{source}: utterance '{r['utt']}' has two records at exit {r['exit']}")
        by_utt[r["utt"]][int(r["exit"])] = r
    exits = sorted({int(r["exit"]) for r in records})
    for utt, per_exit in by_utt.items():
        if sorted(per_exit) != exits:
            line = next(iter(per_exit.values())).get("_line")
            where = f"{source}:{line}" if line else source
            raise UserError(f"{where}: utterance '{utt}' has exits {sorted(per_exit)}, expected {exits}")
    return dict(by_utt), exits


def choose_exit(per_exit, exits, policy, threshold, max_layers=None):
    last = last_exit(exits, policy, threshold, max_layers)
    if policy == "oracle":
        best = per_exit[last]["errors"]
        return next(e for e in exits if per_exit[e]["errors"] <= best)
    for e in exits:
        if stops_at(policy, threshold, e, per_exit[e], last):
            return e
    return last


def operating_point(by_utt, exits, policy, threshold, max_layers=None, with_choices=False):
    errors = words = layer_sum = 0
    choices = {}
    for utt, per_exit in by_utt.items():
        e = choose_exit(per_exit, exits, policy, threshold, max_layers)
        errors += per_exit[e]["errors"]
        words += per_exit[e]["ref_words"]
        layer_sum += e
        choices[utt] = e
    mean_exit = layer_sum / len(by_utt)
    point = {"policy": policy, "threshold": threshold, "wer": error_rate(errors, words), "mean_exit": mean_exit,
             "compute_ratio": mean_exit / exits[-1]}
    if max_layers is not None:
        point["max_layers"] = max_layers
    if with_choices:
        point["choices"] = choices
    return point


def _is_score(value):
    # NaN would compare false with every threshold: the utterance would silently never exit
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def sweep(records, policy, thresholds=None, max_layers=None, with_choices=False, source="the sweep input"):
    """Operating points of `policy` at each threshold; `with_choices` adds each utterance's exit."""
    check_policy(policy, online=False)
    by_utt, exits = group_by_utterance(records, source)
    if policy in RULES:
        field = RULES[policy].score
        bad = next((r for per_exit in by_utt.values() for r in per_exit.values() if not _is_score(r.get(field))),
                   None)
        if bad is not None:
            line = f" (line {bad['_line']})" if "_line" in bad else ""
            what = "lacks it" if field not in bad else f"has {bad[field]!r} for it, not a finite number"
            raise UserError(f"policy '{policy}' needs a '{field}' score in every record; {source} {what}{line}")
        if not thresholds:
            raise UserError(f"policy '{policy}' needs thresholds")
    elif policy in LAYER_POLICIES:
        thresholds = thresholds or exits
    else:
        thresholds = [None]
    return [operating_point(by_utt, exits, policy, t, max_layers, with_choices) for t in thresholds]


def markdown_table(points):
    lines = ["|policy|threshold|WER|mean exit|compute|", "|---|---|---|---|---|"]
    for p in points:
        t = "-" if p["threshold"] is None else f"{p['threshold']:g}"
        if p.get("max_layers") is not None:
            t += f" (max {p['max_layers']} layers)"
        lines.append(f"|{p['policy']}|{t}|{p['wer']:.2f}|{p['mean_exit']:.2f}|{p['compute_ratio']:.3f}|")
    return "\n".join(lines) + "\n"
