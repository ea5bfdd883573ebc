"""HRNet-OCR EMC-Click model. The dotted path of ``HRNetRefineModel`` is stored in checkpoints."""
from __future__ import annotations

from torch import nn

from isegm.model.is_model import ISModel, Outputs
from isegm.model.modeling.hrnet_ocr import HighResolutionNet
from isegm.model.modifiers import LRMult
from isegm.model.refiner import AttRefineAfterLayer
from isegm.utils.serialization import serialize

__all__ = ["HRNetRefineModel"]


class HRNetRefineModel(ISModel):
    """HRNetV2-W{width} + OCR backbone, click encoding added after the stem's first conv.

    The refiner works on the OCR feature (``2 * ocr_width`` channels at 1/4 resolution).
    ``refiner_conf`` is passed to :class:`AttRefineAfterLayer` (``mid_dims``, ``corr_channel``...).
    """

    @serialize
    def __init__(self, width: int = 48, ocr_width: int = 256, small: bool = True,
                 backbone_lr_mult: float = 0.1, norm_layer=nn.BatchNorm2d, refiner_conf: dict = None,
                 **kwargs):
        super().__init__(norm_layer=norm_layer, **kwargs)
        self.feature_extractor = HighResolutionNet(width=width, ocr_width=ocr_width, small=small,
                                                   num_classes=1, norm_layer=norm_layer)
        self.feature_extractor.apply(LRMult(backbone_lr_mult))
        for head in ("ocr_distri_head", "ocr_gather_head", "conv3x3_ocr"):
            getattr(self.feature_extractor, head).apply(LRMult(1.0))
        self.refiner = AttRefineAfterLayer(feature_dims=self.feature_extractor.out_channels, spatial_scale=0.25,
                                           **(refiner_conf or {}))

    def backbone_forward(self, image, coord_features) -> Outputs:
        mask, mask_aux, feature = self.feature_extractor(image, coord_features)
        return {"instances": mask, "instances_aux": mask_aux, "feature": feature}
