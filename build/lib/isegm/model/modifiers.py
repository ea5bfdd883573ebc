"""Per-parameter learning-rate multipliers (read by ``isegm.engine.optimizer.get_optimizer``)."""
from torch import nn


class LRMult:
    """Module visitor for ``module.apply``: tags ``weight`` and ``bias`` with ``lr_mult``."""

    def __init__(self, lr_mult: float = 1.0):
        self.lr_mult = lr_mult

    def __call__(self, module: nn.Module) -> None:
        for name in ("weight", "bias"):
            param = getattr(module, name, None)
            if isinstance(param, nn.Parameter):
                param.lr_mult = self.lr_mult
