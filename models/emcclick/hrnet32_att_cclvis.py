"""EMC-Click, HRNetV2-W32 + OCR (128) backbone, trained on COCO+LVIS (release file `hr32.pth`)."""
from isegm.build import init_model as _init_model

MODEL_NAME = "hrnet32_att_cclvis"
VARIANT = "hr32"


def init_model(cfg):
    """-> (model, model_cfg); ImageNet weights from `cfg.IMAGENET_PRETRAINED_MODELS`."""
    return _init_model(VARIANT, cfg)
