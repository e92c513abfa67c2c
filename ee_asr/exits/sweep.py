"""Offline exit selection over per-utterance, per-exit records: the WER-versus-compute trade-off.

Input records (JSON lines) have `utt`, `exit` (encoder layer), `ref_words`, `errors` and score
fields (`entropy`, `maxprob`, `nbest_posterior`, ...). For each threshold every utterance takes
the first exit at which the policy stops (else the last exit), and the operating point reports
WER = sum(errors) / sum(ref_words) over the chosen exits, the mean exit layer, and the encoder
compute relative to the last exit, counted in layers: mean exit layer / last exit layer.
"""

from collections import defaultdict

from ee_asr.common.errors import UserError
from ee_asr.exits.policies import RULES, check_policy, stops_at


def group_by_utterance(records):
    by_utt = defaultdict(dict)
    for r in records:
        for key in ("utt", "exit", "ref_words", "errors"):
            if key not in r:
                raise UserError(f"record {r.get('utt', '?')} has no '{key}' field")
        by_utt[r["utt"]][int(r["exit"])] = r
    exits = sorted({int(r["exit"]) for r in records})
    for utt, per_exit in by_utt.items():
        if sorted(per_exit) != exits:
            raise UserError(f"utterance '{utt}' has exits {sorted(per_exit)}, expected {exits}")
    return dict(by_utt), exits


def choose_exit(per_exit, exits, policy, threshold):
    if policy == "oracle":
        best = per_exit[exits[-1]]["errors"]
        return next(e for e in exits if per_exit[e]["errors"] <= best)
    for e in exits:
        if stops_at(policy, threshold, e, per_exit[e], exits[-1]):
            return e
    return exits[-1]


def operating_point(by_utt, exits, policy, threshold):
    errors = words = layer_sum = 0
    for per_exit in by_utt.values():
        e = choose_exit(per_exit, exits, policy, threshold)
        errors += per_exit[e]["errors"]
        words += per_exit[e]["ref_words"]
        layer_sum += e
    mean_exit = layer_sum / len(by_utt)
    return {"policy": policy, "threshold": threshold, "wer": 100.0 * errors / max(words, 1),
            "mean_exit": mean_exit, "compute_ratio": mean_exit / exits[-1]}


def sweep(records, policy, thresholds=None):
    check_policy(policy, online=False)
    by_utt, exits = group_by_utterance(records)
    if policy in RULES:
        field = RULES[policy].score
        if any(field not in r for per_exit in by_utt.values() for r in per_exit.values()):
            raise UserError(f"policy '{policy}' needs a '{field}' score in every record")
        if not thresholds:
            raise UserError(f"policy '{policy}' needs thresholds")
    elif policy == "fixed":
        thresholds = thresholds or exits
    else:
        thresholds = [None]
    return [operating_point(by_utt, exits, policy, t) for t in thresholds]


def markdown_table(points):
    lines = ["|policy|threshold|WER|mean exit|compute|", "|---|---|---|---|---|"]
    for p in points:
        t = "-" if p["threshold"] is None else f"{p['threshold']:g}"
        lines.append(f"|{p['policy']}|{t}|{p['wer']:.2f}|{p['mean_exit']:.2f}|{p['compute_ratio']:.3f}|")
    return "\n".join(lines) + "\n"
