"""EMC-Click, SegFormer MiT-b3 backbone, trained on COCO+LVIS (release file `segb3.pth`)."""
from isegm.build import init_model as _init_model

MODEL_NAME = "segformerB3_att_cclvis"
VARIANT = "segb3"


def init_model(cfg):
    """-> (model, model_cfg); ImageNet weights from `cfg.IMAGENET_PRETRAINED_MODELS`."""
    return _init_model(VARIANT, cfg)
