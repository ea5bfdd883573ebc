"""EMC-Click, HRNetV2-W18-small-v2 + OCR (48) backbone, trained on COCO+LVIS (release file `hr18s.pth`)."""
from isegm.build import init_model as _init_model

MODEL_NAME = "hrnet18s_att_cclvis"
VARIANT = "hr18s"


def init_model(cfg):
    """-> (model, model_cfg); ImageNet weights from `cfg.IMAGENET_PRETRAINED_MODELS`."""
    return _init_model(VARIANT, cfg)
