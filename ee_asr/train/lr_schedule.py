"""A learning-rate schedule through given points: warm up, hold, then decay to a floor by a set step."""

import numpy as np
from torch.optim.lr_scheduler import LRScheduler

from ee_asr.common.errors import UserError


class PiecewiseLinearLR(LRScheduler):
    """lr(step) = base lr x the scale interpolated linearly between (steps[i], scales[i]).

    Past the last point the last scale holds, so training on beyond the planned end (more epochs
    on resume) keeps the final learning rate instead of jumping back up. Meant for a budget-bound
    run that should decay to near zero by its last update, where the inverse-square-root decay
    leaves the lr high when the time runs out: over 6 epochs of the mini demo, decaying to 5% of
    the peak was 1-2.5 WER points better at every exit than warmuplr, which ends at 35%.

    A step may be `last`: the run's last update (`planned_updates`, which the trainer computes
    from the data, batch size and max_epoch), so the schedule follows changes of either.
    """

    def __init__(self, optimizer, steps=(0, 25000), scales=(0.0, 1.0), last_epoch=-1, planned_updates=None):
        last = len(steps) > 1 and steps[-1] == "last"
        steps, scales = [resolve_step(s, planned_updates) for s in steps], [float(s) for s in scales]
        if last and steps[-1] <= steps[-2]:
            # a run shorter than the planned warm-up (a smoke test): the earlier points shrink
            # to fit in the first half of the run rather than failing
            factor = steps[-1] / (2.0 * steps[-2])
            steps = [int(s * factor) for s in steps[:-1]] + [steps[-1]]
        if len(steps) != len(scales) or len(steps) < 2:
            raise UserError(f"scheduler_conf: steps {steps} and scales {scales} must be two lists of the "
                            f"same length, at least 2")
        if steps[0] != 0 or any(b <= a for a, b in zip(steps, steps[1:])):
            raise UserError(f"scheduler_conf: steps {steps} must start at 0 and increase")
        if any(s < 0 for s in scales):
            raise UserError(f"scheduler_conf: scales {scales} must not be negative")
        self.steps, self.scales = steps, scales
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        # Step once per update; the first update uses step 1, as espnet's WarmupLR does.
        # np.interp holds the last scale past the last step.
        scale = float(np.interp(self.last_epoch + 1, self.steps, self.scales))
        return [base * scale for base in self.base_lrs]


def resolve_step(step, planned_updates):
    if step == "last":
        if planned_updates is None:
            raise UserError("scheduler_conf: step 'last' needs the run's number of updates (the trainer passes it)")
        return int(planned_updates)
    try:
        return int(step)
    except (TypeError, ValueError):
        raise UserError(f"scheduler_conf: step {step!r} is neither an update count nor 'last'") from None
