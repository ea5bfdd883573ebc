"""EMC-Click, HRNetV2-W32 + OCR (128) backbone, trained on COCO+LVIS (release file `hr32.pth`)."""
from isegm.engine.recipe import init_model as _init_model
from isegm.engine.recipe import train

MODEL_NAME = "hrnet32_att_cclvis"
VARIANT = "hr32"
LR = 8e-4
AUX_LOSS_WEIGHT = 0.4  # BCE on the HRNet auxiliary head


def init_model(cfg):
    """-> (model, model_cfg); ImageNet weights from `cfg.IMAGENET_PRETRAINED_MODELS`."""
    return _init_model(VARIANT, cfg)


def main(cfg):
    model, model_cfg = init_model(cfg)
    train(model, cfg, model_cfg, lr=LR, aux_loss_weight=AUX_LOSS_WEIGHT)
