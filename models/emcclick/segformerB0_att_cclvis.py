"""EMC-Click, SegFormer MiT-b0 backbone, trained on COCO+LVIS (release file `segb0.pth`)."""
from isegm.build import init_model as _init_model

MODEL_NAME = "segformerB0_att_cclvis"
VARIANT = "segb0"


def init_model(cfg):
    """-> (model, model_cfg); ImageNet weights from `cfg.IMAGENET_PRETRAINED_MODELS`."""
    return _init_model(VARIANT, cfg)
