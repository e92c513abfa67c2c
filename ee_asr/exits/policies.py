"""Exit-selection policies: at each exit, from that exit's scores, decide whether to stop.

| policy  | score at an exit (exits/scores.py)                             | stops when         |
|---------|----------------------------------------------------------------|--------------------|
| fixed   | -                                                              | exit layer >= L    |
| budget  | - (the deepest exit within L layers: a device's per-request cap) | next exit > L   |
| entropy | mean frame entropy / log V (exits/scores.py)                   | score <  threshold |
| maxprob | mean top frame posterior                                       | score >  threshold |
| nbest   | top share of softmax over the K-best total scores (ctc_nbest)  | score >= threshold |
| seqpost | p(greedy hypothesis | x), the K -> inf limit of nbest (seq_posterior) | score >= threshold |
| agree   | token edit distance to the exit below / longer length (agreement) | score <= threshold |
| learned | exit classifier's p(this exit as good as the last) (exit_classifier) | score >= threshold |
| oracle  | (offline only) earliest exit with no more errors than the last exit |              |

The last exit answers when no earlier one qualifies. A layer budget (`max_layers`) combines
with any policy: the deepest exit within it becomes the last exit, so a confident utterance
stops earlier and no utterance goes deeper. The same rule serves online decoding (`Policy`,
read by the exit engine, exits/engine.py) and offline sweeps over recorded scores (score/sweep.py).
"""

import operator
from dataclasses import dataclass

from ee_asr.common.errors import UserError


@dataclass(frozen=True)
class Rule:
    score: str
    compare: object
    # the score that decides when `score` was not computed because bounds settled the decision
    # (online nbest: exits/nbest_bounds.py)
    settled_by: str = None

    def stops(self, scores, threshold):
        value = scores[self.score] if self.score in scores or self.settled_by is None else scores[self.settled_by]
        return bool(self.compare(value, threshold))


RULES = {
    "entropy": Rule("entropy", operator.lt),
    "maxprob": Rule("maxprob", operator.gt),
    "nbest": Rule("nbest_posterior", operator.ge, settled_by="seq_posterior"),
    "seqpost": Rule("seq_posterior", operator.ge),
    "agree": Rule("disagreement", operator.le),
    "learned": Rule("p_as_good", operator.ge),
}
LAYER_POLICIES = ("fixed", "budget")  # thresholds are layer numbers
ONLINE_POLICIES = LAYER_POLICIES + tuple(RULES)
ALL_POLICIES = ONLINE_POLICIES + ("oracle",)


def check_policy(name, online=True):
    allowed = ONLINE_POLICIES if online else ALL_POLICIES
    if name not in allowed:
        raise UserError(f"unknown policy '{name}' (choices: {', '.join(allowed)})")


def last_exit(exit_layers, policy=None, threshold=None, max_layers=None):
    """The exit that answers when no earlier one qualifies: the deepest within the layer cap
    (`max_layers`, or the `budget` policy's threshold). A cap is an exit layer; UserError otherwise."""
    if policy == "fixed" and threshold is not None and threshold > exit_layers[-1]:
        raise UserError(f"fixed exit {threshold:g} is past the last exit ({exit_layers[-1]})")
    caps = [c for c in (max_layers, threshold if policy == "budget" else None) if c is not None]
    for cap in caps:
        if cap not in exit_layers:
            what = "max_layers" if cap == max_layers else "the budget policy's threshold"
            raise UserError(f"{what} {cap:g} is not an exit layer (exits: {', '.join(map(str, exit_layers))})")
    return min(caps) if caps else exit_layers[-1]


def stops_at(policy, threshold, layer, scores, last_layer):
    """Whether `policy` stops at exit `layer` given that exit's `scores` (a dict); `last_layer`
    is the exit that answers anyway (see last_exit)."""
    if layer >= last_layer:
        return True
    if policy == "fixed":
        return layer >= threshold
    if policy == "budget":
        return False  # it stops only at the last exit within its budget
    return RULES[policy].stops(scores, threshold)


def policy_scores(policy):
    """The scores `policy` reads (online decoding computes only these)."""
    return {RULES[policy].score} if policy in RULES else set()


@dataclass(frozen=True)
class Policy:
    """One operating point: a policy, its threshold and a layer budget (`max_layers`)."""

    name: str
    threshold: float
    max_layers: int = None

    def __post_init__(self):
        check_policy(self.name)

    @property
    def scores(self):
        """The scores this policy reads at an exit below its last: the engine computes only these."""
        return policy_scores(self.name)

    def last_exit(self, exit_layers):
        return last_exit(exit_layers, self.name, self.threshold, self.max_layers)

    def stops(self, layer, scores, last_layer):
        return stops_at(self.name, self.threshold, layer, scores, last_layer)


def check_threshold(policy, threshold, option="--threshold"):
    """A threshold a user gave, checked against its meaning: a layer (fixed, budget) is a whole
    number >= 1 (an exit layer, checked against the model's exits where it is loaded); every
    score a rule reads is a share or a probability, so its threshold is in [0, 1]."""
    if threshold != threshold or threshold in (float("inf"), float("-inf")):
        raise UserError(f"{option} {threshold} for {policy}: not a number")
    if policy in LAYER_POLICIES:
        if threshold < 1 or threshold != int(threshold):
            raise UserError(f"{option} {threshold:g} for {policy}: an exit layer (a whole number >= 1)")
    elif not 0.0 <= threshold <= 1.0:
        raise UserError(f"{option} {threshold:g} for {policy}: its {RULES[policy].score} is in [0, 1], "
                        f"so must the threshold be")
    return threshold


def parse_grid(specs):
    """["entropy:0.02,0.05", "fixed:6"] -> [("entropy", [0.02, 0.05]), ("fixed", [6.0])], every
    threshold checked (check_threshold)."""
    grid = []
    for spec in specs:
        policy, _, values = spec.partition(":")
        check_policy(policy)
        try:
            thresholds = [float(v) for v in values.split(",")]
        except ValueError:
            raise UserError(f"bad policy spec '{spec}': expected <policy>:<threshold>[,<threshold>...]") from None
        grid.append((policy, [check_threshold(policy, t, f"'{spec}':") for t in thresholds]))
    return grid
