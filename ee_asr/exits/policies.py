"""Exit-selection policies: at each exit, from that exit's scores, decide whether to stop.

| policy  | score at an exit                                   | stops when          |
|---------|----------------------------------------------------|---------------------|
| fixed   | -                                                  | exit layer == L     |
| entropy | mean frame entropy / log V (exits/confidence.py)   | score <  threshold  |
| maxprob | mean top frame posterior                           | score >  threshold  |
| nbest   | top share of softmax over N-best scores (K = beam) | score >= threshold  |
| oracle  | (offline only) earliest exit with no more errors than the last exit |    |

The last exit answers when no earlier one qualifies. The same rule serves online decoding
(decode/dynamic.py) and offline sweeps over recorded scores (exits/sweep.py).
"""

import operator
from dataclasses import dataclass

from ee_asr.common.errors import UserError


@dataclass(frozen=True)
class Rule:
    score: str
    compare: object

    def stops(self, value, threshold):
        return bool(self.compare(value, threshold))


RULES = {
    "entropy": Rule("entropy", operator.lt),
    "maxprob": Rule("maxprob", operator.gt),
    "nbest": Rule("nbest_posterior", operator.ge),
}
ONLINE_POLICIES = ("fixed",) + tuple(RULES)
ALL_POLICIES = ONLINE_POLICIES + ("oracle",)


def check_policy(name, online=True):
    allowed = ONLINE_POLICIES if online else ALL_POLICIES
    if name not in allowed:
        raise UserError(f"unknown policy '{name}' (choices: {', '.join(allowed)})")


def stops_at(policy, threshold, layer, scores, last_layer):
    """Whether `policy` stops at exit `layer` given that exit's `scores` (a dict)."""
    if layer == last_layer:
        return True
    if policy == "fixed":
        return layer >= threshold
    return RULES[policy].stops(scores[RULES[policy].score], threshold)


def needs_nbest(policy):
    return policy == "nbest"


def parse_grid(specs):
    """["entropy:0.02,0.05", "fixed:6"] -> [("entropy", [0.02, 0.05]), ("fixed", [6.0])]."""
    grid = []
    for spec in specs:
        policy, _, values = spec.partition(":")
        check_policy(policy)
        try:
            thresholds = [float(v) for v in values.split(",")]
        except ValueError:
            raise UserError(f"bad policy spec '{spec}': expected <policy>:<threshold>[,<threshold>...]") from None
        grid.append((policy, thresholds))
    return grid
