"""The training recipe shared by the five EMC-Click configs (``models/emcclick/*.py``).

Everything here is what the released configs have in common; each config passes what differs
(learning rate, the auxiliary loss weight of the HRNet models).
"""
from __future__ import annotations

from functools import partial
from typing import Tuple

import torch
from easydict import EasyDict

from isegm.build import build_emc_click
from isegm.data.datasets import CocoLvisDataset
from isegm.data.points_sampler import FirstPointSampler
from isegm.data.transforms import train_augmentator
from isegm.engine.trainer import ISTrainer, TrainerConfig
from isegm.model.is_model import ISModel
from isegm.model.losses import WFNL, NormalizedFocalLossSigmoid, SigmoidBinaryCrossEntropyLoss
from isegm.model.metrics import AdaptiveIoU
from isegm.model.variants import get_variant
from isegm.utils.errors import ConfigKeyError

NUM_EPOCHS = 230
EPOCH_LEN = 30000
MILESTONES = [200, 220]
CHECKPOINT_INTERVAL = [(0, 5), (200, 1)]
IMAGE_DUMP_INTERVAL = 3000
CROP_SIZE = (320, 480)
NUM_MAX_POINTS = 24  # click slots per sign in training (the first click + 23 simulated ones at most)
BATCH_SIZE = 32  # global, when --batch-size is not given


def init_model(variant: str, cfg) -> Tuple[ISModel, EasyDict]:
    """What a model config's ``init_model(cfg)`` does: build ``variant``, load its ImageNet weights.

    The backbone weights come from ``cfg.IMAGENET_PRETRAINED_MODELS.<KEY>`` (empty: random init
    with a warning). Returns ``(model, model_cfg)`` with the training crop size and click slots.
    """
    key = get_variant(variant).imagenet_key
    paths = cfg.get("IMAGENET_PRETRAINED_MODELS") or {}
    model = build_emc_click(variant, imagenet_weights=paths.get(key, ""), device=cfg.get("device", "cpu"))
    return model, EasyDict(crop_size=CROP_SIZE, num_max_points=NUM_MAX_POINTS)


def emc_click_losses(aux_loss_weight: float = 0.0) -> EasyDict:
    """NFL on the backbone output, WFNL on the corrected output, BCE on HRNet's auxiliary head."""
    loss_cfg = EasyDict()
    loss_cfg.instance_loss = NormalizedFocalLossSigmoid(alpha=0.5, gamma=2)
    loss_cfg.instance_loss_weight = 1.0
    if aux_loss_weight > 0:
        loss_cfg.instance_aux_loss = SigmoidBinaryCrossEntropyLoss()
        loss_cfg.instance_aux_loss_weight = aux_loss_weight
    loss_cfg.instance_refine_loss = WFNL(alpha=0.5, gamma=2)
    loss_cfg.instance_refine_loss_weight = 1.0
    return loss_cfg


def first_point_sampler(num_max_points: int = NUM_MAX_POINTS) -> FirstPointSampler:
    return FirstPointSampler(num_max_points, prob_gamma=0.80, merge_objects_prob=0.15, max_num_merged_objects=2,
                             use_hierarchy=False, first_click_center=True)


def make_trainer(model, cfg, model_cfg, trainset, lr: float, aux_loss_weight: float = 0.0,
                 milestones=MILESTONES, checkpoint_interval=CHECKPOINT_INTERVAL,
                 image_dump_interval: int = IMAGE_DUMP_INTERVAL, default_batch_size: int = BATCH_SIZE,
                 **trainer_kwargs) -> ISTrainer:
    """The released configs' ``ISTrainer``: Adam, backbone LR x0.1, MultiStepLR x0.1 at ``milestones``.

    ``cfg`` is the experiment config (:func:`isegm.utils.exp.init_experiment`); it is read, not
    modified.
    """
    config = TrainerConfig.from_experiment(cfg, default_batch_size=default_batch_size)
    return ISTrainer(model, config, emc_click_losses(aux_loss_weight), trainset, None,
                     optimizer="adam", optimizer_params={"lr": lr, "betas": (0.9, 0.999), "eps": 1e-8},
                     lr_scheduler=partial(torch.optim.lr_scheduler.MultiStepLR, milestones=milestones, gamma=0.1),
                     checkpoint_interval=checkpoint_interval, image_dump_interval=image_dump_interval,
                     metrics=[AdaptiveIoU()], max_interactive_points=model_cfg.num_max_points,
                     max_num_next_clicks=model_cfg.num_max_points, sample_prob_sigma=0.8, **trainer_kwargs)


def train(model, cfg, model_cfg, lr: float, aux_loss_weight: float = 0.0) -> None:
    """Train on COCO+LVIS (``LVIS_v1_PATH``) for 230 epochs of 30000 samples, as the released models.

    ``--epochs`` / ``--epoch-len`` shorten the schedule (the LR milestones stay at epochs 200, 220).
    The original also built a COCO+LVIS validation loader that nothing used; it is not built here.
    """
    if not cfg.get("LVIS_v1_PATH"):
        raise ConfigKeyError("config.yml has no LVIS_v1_PATH (missing or empty): set it to the COCO+LVIS dataset "
                             "root (with train/hannotation.pickle, train/images, train/masks)")
    trainset = CocoLvisDataset(cfg.LVIS_v1_PATH, split="train", augmentator=train_augmentator(model_cfg.crop_size),
                               min_object_area=1000, keep_background_prob=0.0,
                               points_sampler=first_point_sampler(model_cfg.num_max_points),
                               epoch_len=cfg.get("epoch_len") or EPOCH_LEN, stuff_prob=0.2)
    trainer = make_trainer(model, cfg, model_cfg, trainset, lr, aux_loss_weight)
    trainer.run(num_epochs=cfg.get("epochs") or NUM_EPOCHS)
