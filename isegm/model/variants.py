"""The five released EMC-Click networks: one typed table, the single source for builder, scripts and docs."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Tuple, Type

from isegm.model.initializer import XavierGluon
from isegm.model.is_model import ISModel
from isegm.model.is_refine_model import HRNetRefineModel
from isegm.model.is_refine_segformer_model import SegFormerModel
from isegm.utils.errors import ConfigKeyError

# Constructor arguments the released configs pass besides the backbone's, per model class. The order
# matters: a checkpoint config records specified arguments in call order, and these are the
# released files' orders.
_FAMILY_ARGS: Dict[type, Mapping[str, Any]] = {
    HRNetRefineModel: MappingProxyType(dict(with_aux_output=True, use_leaky_relu=True, use_rgb_conv=False,
                                            use_disks=True, norm_radius=5, with_prev_mask=True)),
    SegFormerModel: MappingProxyType(dict(use_leaky_relu=True, use_rgb_conv=False, use_disks=True, norm_radius=5,
                                          binary_prev_mask=False, with_prev_mask=True, with_aux_output=True)),
}


@dataclass(frozen=True)
class Variant:
    """One released network.

    Attributes:
        name: the release file stem (``hr18s.pth`` -> ``'hr18s'``) and registry key.
        title: what the backbone is, for tables and docs.
        model_class: the checkpointed class (its dotted path is stored in the files).
        backbone: the backbone's constructor arguments.
        mid_dims: M, the correction head's width, which is also K, the templates per click sign.
        imagenet_key: the ``config.yml`` key under ``IMAGENET_PRETRAINED_MODELS`` of its backbone weights.
        config: the training config script.
        xavier_init: the training config initialises the whole model with ``XavierGluon`` (HRNet).
    """

    name: str
    title: str
    model_class: Type[ISModel]
    backbone: Mapping[str, Any] = field(repr=False)
    mid_dims: int
    imagenet_key: str
    config: str
    xavier_init: bool

    @property
    def model_args(self) -> Dict[str, Any]:
        """The constructor arguments, in the released configs' order."""
        refiner_conf = dict(conv_layer="xconv2", mid_dims=self.mid_dims, corr_channel=self.mid_dims)
        return {**self.backbone, **_FAMILY_ARGS[self.model_class], "refiner_conf": refiner_conf,
                "only_first_click": True}

    def build(self, init: bool = True) -> ISModel:
        """A new model with random weights; ``init`` applies the training config's initialiser."""
        model = self.model_class(**self.model_args)
        if init and self.xavier_init:
            model.apply(XavierGluon(rnd_type="gaussian", magnitude=2.0))
        return model

    def matches(self, config: Mapping[str, Any]) -> bool:
        """Whether a checkpoint ``config`` (``{'class', 'params'}``) describes this network."""
        if config.get("class") != f"{self.model_class.__module__}.{self.model_class.__qualname__}":
            return False
        params = config.get("params") or {}
        return all(isinstance(params.get(k), dict) and params[k].get("value") == v
                   for k, v in self.model_args.items())


VARIANTS: Tuple[Variant, ...] = (
    Variant("hr18s", "HRNetV2-W18-small-v2 + OCR(48)", HRNetRefineModel,
            MappingProxyType(dict(width=18, ocr_width=48, small=True)), 64, "HRNETV2_W18_SMALL",
            "models/emcclick/hrnet18s_att_cclvis.py", xavier_init=True),
    Variant("hr18", "HRNetV2-W18 + OCR(64)", HRNetRefineModel,
            MappingProxyType(dict(width=18, ocr_width=64, small=False)), 96, "HRNETV2_W18",
            "models/emcclick/hrnet18_att_cclvis.py", xavier_init=True),
    Variant("hr32", "HRNetV2-W32 + OCR(128)", HRNetRefineModel,
            MappingProxyType(dict(width=32, ocr_width=128, small=False)), 96, "HRNETV2_W32",
            "models/emcclick/hrnet32_att_cclvis.py", xavier_init=True),
    Variant("segb0", "SegFormer MiT-b0", SegFormerModel, MappingProxyType(dict(model_version="b0")), 64,
            "SEGFORMER_B0", "models/emcclick/segformerB0_att_cclvis.py", xavier_init=False),
    Variant("segb3", "SegFormer MiT-b3", SegFormerModel, MappingProxyType(dict(model_version="b3")), 96,
            "SEGFORMER_B3", "models/emcclick/segformerB3_att_cclvis.py", xavier_init=False),
)
VARIANTS_BY_NAME: Mapping[str, Variant] = MappingProxyType({v.name: v for v in VARIANTS})


def get_variant(name: str) -> Variant:
    """The variant called ``name``; :class:`ConfigKeyError` (a ``KeyError``) naming the known ones otherwise."""
    try:
        return VARIANTS_BY_NAME[name]
    except KeyError:
        raise ConfigKeyError(f"unknown EMC-Click model {name!r}; choose one of {list(VARIANTS_BY_NAME)}") from None


def variant_of(config: Mapping[str, Any]) -> Optional[Variant]:
    """The released network a checkpoint ``config`` describes, or None (another architecture)."""
    return next((v for v in VARIANTS if v.matches(config)), None)
