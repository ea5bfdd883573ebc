"""EMC-Click, HRNetV2-W18 + OCR (64) backbone, trained on COCO+LVIS (release file `hr18.pth`)."""
from isegm.build import init_model as _init_model

MODEL_NAME = "hrnet18_att_cclvis"
VARIANT = "hr18"


def init_model(cfg):
    """-> (model, model_cfg); ImageNet weights from `cfg.IMAGENET_PRETRAINED_MODELS`."""
    return _init_model(VARIANT, cfg)
