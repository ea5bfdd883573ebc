"""EMC-Click, SegFormer MiT-b0 backbone, trained on COCO+LVIS (release file `segb0.pth`)."""
from isegm.engine.recipe import init_model as _init_model
from isegm.engine.recipe import train

MODEL_NAME = "segformerB0_att_cclvis"
VARIANT = "segb0"
LR = 1e-3
AUX_LOSS_WEIGHT = 0.0  # SegFormer has no auxiliary head loss


def init_model(cfg):
    """-> (model, model_cfg); ImageNet weights from `cfg.IMAGENET_PRETRAINED_MODELS`."""
    return _init_model(VARIANT, cfg)


def main(cfg):
    model, model_cfg = init_model(cfg)
    train(model, cfg, model_cfg, lr=LR, aux_loss_weight=AUX_LOSS_WEIGHT)
