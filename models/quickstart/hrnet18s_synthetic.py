"""Quick start: EMC-Click hr18s trained from scratch on the procedural synthetic dataset.

About ten minutes on 2 CPU cores, no downloads (``python scripts/quickstart.py`` trains it and
evaluates NoC before and after). The network is the released hr18s architecture, so the
checkpoints load with ``load_is_model`` like any other. What differs from the COCO+LVIS recipe:
small crops of small synthetic images, no ImageNet weights (so the backbone learns at the full
rate instead of x0.1), a short schedule, and smaller minimum object sizes.
"""
from isegm.data.datasets import SYNTHETIC_SEEDS, SyntheticDataset
from isegm.data.transforms import train_augmentator
from isegm.engine.recipe import first_point_sampler, make_trainer
from isegm.engine.recipe import init_model as _init_model

MODEL_NAME = "hrnet18s_synthetic"
VARIANT = "hr18s"
IMAGE_SIZE = (200, 300)  # the 'Synthetic' evaluation set's size...
INFER_SIZE = 128  # ... which the evaluation shrinks to this short side (scripts/quickstart.py passes it)
SCALE = INFER_SIZE / IMAGE_SIZE[0]
CROP_SIZE = (96, 144)  # crops of the evaluation-scale images: cheaper steps, more samples
BATCH_SIZE = 8  # global: 4 per process with the quick start's 2 processes
LR = 2e-3  # from scratch, short schedule
EPOCHS = 4
EPOCH_LEN = 900
MIN_AREA = 150  # pixels: the COCO+LVIS recipe's 1000 would drop most synthetic objects


def init_model(cfg):
    model, model_cfg = _init_model(VARIANT, cfg)
    for param in model.parameters():
        param.lr_mult = 1.0  # random backbone: no reason to slow it down
    model_cfg.crop_size = CROP_SIZE
    return model, model_cfg


def main(cfg):
    model, model_cfg = init_model(cfg)
    # The released configs' augmentation, rescaled so that objects have their evaluation size.
    augmentator = train_augmentator(CROP_SIZE, scale_range=(0.75 * SCALE, 1.40 * SCALE))
    trainset = SyntheticDataset(num_samples=5000, image_size=IMAGE_SIZE, seed=SYNTHETIC_SEEDS["train"],
                                augmentator=augmentator, points_sampler=first_point_sampler(),
                                min_object_area=MIN_AREA, min_mask_area=MIN_AREA, small_region_size=MIN_AREA // 3,
                                epoch_len=cfg.get("epoch_len") or EPOCH_LEN)
    epochs = cfg.get("epochs") or EPOCHS
    trainer = make_trainer(model, cfg, model_cfg, trainset, lr=LR, aux_loss_weight=0.4,
                           milestones=[int(epochs * 0.8)], checkpoint_interval=0, image_dump_interval=200,
                           save_initial_checkpoint=True, default_batch_size=BATCH_SIZE)
    trainer.run(num_epochs=epochs)
