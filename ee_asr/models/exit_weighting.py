"""How the per-exit losses add up to the training loss.

With exits at layers L_1..L_n and per-exit losses l_i:
- `equal` (the paper's joint loss): loss = sum_i l_i.
- `increasing`: loss = sum_i (L_i / mean_j L_j) * l_i; deeper exits weigh more, the total
  weight stays n as with `equal`, so learning rates carry over.
- `learned` (uncertainty weighting, Kendall et al. 2018): loss = sum_i exp(-s_i) * l_i + s_i,
  with one trainable s_i per exit, starting at 0 (that is, at `equal`).
- a list of n numbers: loss = sum_i w_i * l_i.
"""

import torch

from ee_asr.common.errors import UserError


class ExitWeighting(torch.nn.Module):
    def __init__(self, exit_layers, weighting="equal"):
        super().__init__()
        n = len(exit_layers)
        self.learned = weighting == "learned"
        if self.learned:
            self.log_vars = torch.nn.Parameter(torch.zeros(n))
            fixed = [1.0] * n
        elif weighting == "equal":
            fixed = [1.0] * n
        elif weighting == "increasing":
            mean = sum(exit_layers) / n
            fixed = [layer / mean for layer in exit_layers]
        elif isinstance(weighting, (list, tuple)) and len(weighting) == n:
            fixed = [float(w) for w in weighting]
        else:
            raise UserError(f"exit_weighting must be equal, increasing, learned or a list of {n} "
                            f"numbers, not {weighting!r}")
        self.register_buffer("fixed", torch.tensor(fixed), persistent=False)

    def forward(self, losses):
        losses = torch.stack(list(losses))
        if self.learned:
            return (torch.exp(-self.log_vars) * losses + self.log_vars).sum()
        return (self.fixed.to(losses.dtype) * losses).sum()
