"""Distribution-free risk control: Learn-then-Test with fixed-sequence testing and betting p-values.

Learn-then-Test (Angelopoulos, Bates, Candès, Jordan, Lei 2021) turns the choice of a threshold
into multiple testing: for each candidate λ, H0(λ): E[loss(λ)] > 0. The candidates are tested in
a fixed order, from most compute to least, each at level δ, stopping at the first that is not
rejected; every candidate before it is certified. Fixed-sequence testing controls the
family-wise error at δ without a multiplicity correction, so a fine threshold grid costs
nothing, and the certified set is a prefix of the order, so "least compute" is its last element.

The p-value of one hypothesis is a betting test (Waudby-Smith and Ramdas 2023): a gambler
bets against H0 on the losses in turn, capital K_t = prod_i (1 - λ_i x_i) with x_i = loss_i / B
and 0 <= λ_i < 1 chosen from the earlier losses only (aGRAPA: λ = -mean / mean square). Under
H0 and x <= 1, K is a non-negative supermartingale, so by Ville's inequality
P(sup_t K_t >= 1/δ) <= δ and p = min(1, 1 / max_t K_t) is a valid p-value at every sample
size, with no normal approximation. Only the loss's upper bound B matters: losses far below
zero only make the capital grow.
"""

import numpy as np

MAX_BET = 0.9  # λ never stakes more than 90% of the capital: a loss at the bound costs at most 90%
PRIOR_SQUARE = 0.25  # one pseudo-observation of x² = 1/4 keeps the first bets small


def betting_p_values(losses, bound, max_bet=MAX_BET):
    """p-values of H0: E[loss] > 0 for each column of `losses` (rows: utterances in a random
    order, independent of their values); every loss must be <= `bound` (> 0)."""
    x = np.asarray(losses, dtype=np.float64) / float(bound)
    if x.size and x.max() > 1 + 1e-9:
        raise ValueError(f"a loss exceeds the bound {bound}")
    n = x.shape[0]
    seen = np.arange(n, dtype=np.float64)[:, None]  # losses seen before row i
    before = np.cumsum(x, axis=0) - x
    before_sq = np.cumsum(x * x, axis=0) - x * x
    mean = before / np.maximum(seen, 1)
    mean_sq = (before_sq + PRIOR_SQUARE) / (seen + 1)
    bets = np.clip(-mean / mean_sq, 0.0, max_bet)
    log_capital = np.cumsum(np.log1p(-bets * x), axis=0)
    return np.exp(-np.maximum(log_capital.max(axis=0, initial=0.0), 0.0))


def fixed_sequence(p_values, delta):
    """How many leading hypotheses are rejected at level δ before the first that is not."""
    ok = np.asarray(p_values) <= delta
    return int(ok.size if ok.all() else np.argmin(ok))


def certified_prefix(loss_columns, bound, delta, chunk=64):
    """Fixed-sequence testing over columns produced lazily: `loss_columns(lo, hi)` gives the
    losses of candidates lo..hi-1 (rows: utterances). Returns (number certified, their p-values).
    Stops computing at the first chunk holding a non-rejection."""
    p_all = []
    lo = 0
    while True:
        block = loss_columns(lo, lo + chunk)
        if block.shape[1] == 0:
            break
        p = betting_p_values(block, bound)
        p_all.extend(p.tolist())
        k = fixed_sequence(p, delta)
        if k < p.size:
            return lo + k, p_all
        lo += block.shape[1]
    return len(p_all), p_all
