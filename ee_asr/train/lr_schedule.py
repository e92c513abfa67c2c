"""A learning-rate schedule through given points: warm up, hold, then decay to a floor by a set step."""

from torch.optim.lr_scheduler import LRScheduler

from ee_asr.common.errors import UserError


class PiecewiseLinearLR(LRScheduler):
    """lr(step) = base lr x the scale interpolated linearly between (steps[i], scales[i]).

    Past the last point the last scale holds, so training on beyond the planned end (more epochs
    on resume) keeps the final learning rate instead of jumping back up. A budget-bound run decays
    to near zero at its last update: the schedule the mini demo uses, since the inverse-square-root
    decay leaves the lr high when the time runs out.
    """

    def __init__(self, optimizer, steps=(0, 25000), scales=(0.0, 1.0), last_epoch=-1):
        steps, scales = [int(s) for s in steps], [float(s) for s in scales]
        if len(steps) != len(scales) or len(steps) < 2:
            raise UserError(f"scheduler_conf: steps {steps} and scales {scales} must be two lists of the "
                            f"same length, at least 2")
        if steps[0] != 0 or any(b <= a for a, b in zip(steps, steps[1:])):
            raise UserError(f"scheduler_conf: steps {steps} must start at 0 and increase")
        if any(s < 0 for s in scales):
            raise UserError(f"scheduler_conf: scales {scales} must not be negative")
        self.steps, self.scales = steps, scales
        super().__init__(optimizer, last_epoch)

    def scale(self, step):
        if step >= self.steps[-1]:
            return self.scales[-1]
        for (s0, v0), (s1, v1) in zip(zip(self.steps, self.scales), zip(self.steps[1:], self.scales[1:])):
            if step < s1:
                return v0 + (v1 - v0) * (step - s0) / (s1 - s0)
        return self.scales[-1]

    def get_lr(self):
        # Step once per update; the first update uses step 1, as espnet's WarmupLR does.
        return [base * self.scale(self.last_epoch + 1) for base in self.base_lrs]
