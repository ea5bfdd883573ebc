"""SegFormer EMC-Click model. The dotted path of ``SegFormerModel`` is stored in checkpoints."""
from __future__ import annotations

from torch import nn

from isegm.model.is_model import ISModel, Outputs
from isegm.model.modeling.segformer.segformer_model import SegFormer
from isegm.model.modifiers import LRMult
from isegm.model.refiner import AttRefineAfterLayer
from isegm.utils.serialization import serialize

__all__ = ["SegFormerModel"]

class SegFormerModel(ISModel):
    """MiT-{model_version} + SegFormer head; the raw first-click disk enters as a side input.

    No ``maps_transform``: the 1-channel disk is embedded by the backbone's ``patch_embed_side1``.
    """

    @serialize
    def __init__(self, feature_stride: int = 4, backbone_lr_mult: float = 0.1, norm_layer=nn.BatchNorm2d,
                 model_version: str = "b0", refiner_conf: dict = None, **kwargs):
        super().__init__(feature_stride=feature_stride, norm_layer=norm_layer, **kwargs)
        if model_version not in SegFormer.VERSIONS:
            raise ValueError(f"SegFormerModel: model_version must be one of {list(SegFormer.VERSIONS)}, "
                             f"got {model_version!r}")
        self.model_version = model_version
        self.feature_extractor = SegFormer(model_version, side_dims=self.coord_feature_ch)
        self.feature_extractor.backbone.apply(LRMult(backbone_lr_mult))
        self.refiner = AttRefineAfterLayer(feature_dims=self.feature_extractor.out_channels, spatial_scale=0.25,
                                           **(refiner_conf or {}))
        self.maps_transform = None

    def backbone_forward(self, image, coord_features) -> Outputs:
        mask, feature = self.feature_extractor(image, coord_features)
        return {"instances": mask, "instances_aux": mask, "feature": feature}
