"""The one checked loader of torch files (weights, checkpoints, training states): the digest
written beside it is checked first, and no torch error reaches the user raw."""

from ee_asr.common.digest import check_sidecar
from ee_asr.common.errors import UserError


def load_torch_file(path, what, fix, weights_only=True, check_digest=True):
    """torch.load of `path` onto the CPU; `what` names what it should be ("model weights"), `fix`
    says what to do about a bad file. Imports torch here: common/ stays importable without it."""
    import torch

    if check_digest:
        check_sidecar(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as e:  # torch raises many kinds (RuntimeError, EOFError, UnpicklingError...)
        raise UserError(f"{path} cannot be read as {what} ({type(e).__name__}): {fix}") from None
