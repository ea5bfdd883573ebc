"""Weight initialisers used by the HRNet model configs (training only)."""
import math

from torch import nn

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm,
          nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm)


class Initializer:
    """Module visitor for ``module.apply``: norm layers get gamma 1 / beta 0, others weight/bias init.

    Each module is initialised once (``local_init``), so applying it to a parent after a child
    keeps the child's values. Only attributes called ``weight`` / ``bias`` are touched (e.g. not
    ``MultiheadAttention.in_proj_weight`` or ``ScaleLayer.scale``), as in the original.
    """

    def __init__(self, local_init: bool = True, gamma: float = None):
        self.local_init = local_init
        self.gamma = gamma

    def __call__(self, m: nn.Module) -> None:
        if getattr(m, "_isegm_initialized", False):
            return
        weight, bias = getattr(m, "weight", None), getattr(m, "bias", None)
        if isinstance(m, _NORMS) or "BatchNorm" in type(m).__name__:
            if weight is not None:
                if self.gamma is None:
                    nn.init.constant_(weight.data, 1.0)
                else:
                    nn.init.normal_(weight.data, 1.0, self.gamma)
            if bias is not None:
                nn.init.constant_(bias.data, 0.0)
        else:
            if isinstance(weight, nn.Parameter):
                self._init_weight(weight.data)
            if isinstance(bias, nn.Parameter):
                nn.init.constant_(bias.data, 0.0)
        if self.local_init:
            object.__setattr__(m, "_isegm_initialized", True)

    def _init_weight(self, data):
        nn.init.uniform_(data, -0.07, 0.07)


class XavierGluon(Initializer):
    """MXNet-Gluon-style Xavier: scale ``sqrt(magnitude / factor)``, factor from fan in/out."""

    def __init__(self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3,
                 **kwargs):
        super().__init__(**kwargs)
        if rnd_type not in ("uniform", "gaussian"):
            raise ValueError(f"XavierGluon: unknown rnd_type {rnd_type!r} (uniform or gaussian)")
        if factor_type not in ("avg", "in", "out"):
            raise ValueError(f"XavierGluon: unknown factor_type {factor_type!r} (avg, in or out)")
        self.rnd_type, self.factor_type, self.magnitude = rnd_type, factor_type, float(magnitude)

    def _init_weight(self, data):
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(data)
        factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[self.factor_type]
        scale = math.sqrt(self.magnitude / factor)
        if self.rnd_type == "uniform":
            nn.init.uniform_(data, -scale, scale)
        else:
            nn.init.normal_(data, 0, scale)
