"""``ISTrainer``: the EMC-Click training loop (the original's ``clickatt_trainer_batchconsistant``).

One step: the backbone sees the first click; a random number of simulated correction clicks is
added by running only the correction head, without gradient, on the backbone output of the first
(:func:`~isegm.engine.click_simulation.simulate_corrections`); then one gradient pass (backbone on
the first click, head on all clicks and the last corrected mask).
"""
from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler
from tqdm import tqdm

from isegm.data.points_sampler import generate_probs
from isegm.data.seeding import worker_init_fn
from isegm.engine.checkpoints import LAST, checkpoint_epoch, load_state, remove_stale_temporaries, save_pair
from isegm.engine.click_simulation import simulate_corrections
from isegm.engine.optimizer import get_optimizer
from isegm.model.checkpoint import CheckpointError, list_checkpoints, load_weights, read_checkpoint, save_checkpoint
from isegm.utils import distributed as du
from isegm.utils.errors import InputError, MissingFileError
from isegm.utils.log import SummaryWriterAvg, TqdmToLogger
from isegm.utils.vis import save_training_panels

LOSS_NAMES = ("instance_loss", "instance_aux_loss", "instance_refine_loss")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainerConfig:
    """What the trainer needs of an experiment; built once, never modified.

    Attributes:
        checkpoints_path, logs_path, vis_path: the experiment's folders.
        device: where the model runs.
        batch_size: the global batch, split over the processes.
        workers: DataLoader workers per process.
        distributed: launched as several processes (``torch.distributed``).
        rank, local_rank: this process's ranks.
        gpu_ids: GPUs of a single process (DataParallel when more than one).
        fp16: mixed precision (CUDA only).
        start_epoch: first epoch when no training state is resumed.
        weights: checkpoint whose weights initialise the model (``--weights``).
        resume: continue the experiment (``--resume-exp``) from ``resume_prefix``.
        resume_prefix: ``'latest'`` (``last_checkpoint.pth``) or a checkpoint file prefix.
    """

    checkpoints_path: Path
    logs_path: Path
    vis_path: Path
    device: torch.device = torch.device("cpu")
    batch_size: int = 32
    workers: int = 4
    distributed: bool = False
    rank: int = 0
    local_rank: int = 0
    gpu_ids: Tuple[int, ...] = ()
    fp16: bool = False
    start_epoch: int = 0
    weights: Optional[str] = None
    resume: bool = False
    resume_prefix: str = "latest"

    @classmethod
    def from_experiment(cls, cfg: Any, default_batch_size: int = 32) -> "TrainerConfig":
        """From :func:`isegm.utils.exp.init_experiment`'s config (``batch_size < 1``: the default)."""
        batch = int(cfg.get("batch_size") or -1)
        return cls(checkpoints_path=Path(cfg.CHECKPOINTS_PATH), logs_path=Path(cfg.LOGS_PATH),
                   vis_path=Path(cfg.VIS_PATH), device=torch.device(cfg.get("device", "cpu")),
                   batch_size=batch if batch > 0 else default_batch_size, workers=int(cfg.get("workers") or 0),
                   distributed=bool(cfg.get("distributed")), rank=int(cfg.get("rank") or 0),
                   local_rank=int(cfg.get("local_rank") or 0), gpu_ids=tuple(cfg.get("gpu_ids") or ()),
                   fp16=bool(cfg.get("fp16")), start_epoch=int(cfg.get("start_epoch") or 0),
                   weights=cfg.get("weights") or None, resume=bool(cfg.get("resume_exp")),
                   resume_prefix=cfg.get("resume_prefix") or "latest")

    def batch_per_process(self, world_size: int) -> int:
        """The per-process batch; ValueError when it cannot be split or is below 2 (batch norm)."""
        batch = self.batch_size
        if self.distributed:
            if batch < world_size:
                raise InputError(f"--batch-size {batch} is the global batch: it must be at least the number "
                                 f"of processes ({world_size})")
            batch //= world_size
        if batch < 2:
            raise InputError(f"the batch per process is {batch}: the networks' batch norms need at least 2 "
                             "samples per process in training (raise --batch-size)")
        return batch


def _checkpoint_interval(interval, epoch: int) -> int:
    """``[(0, 5), (200, 1)]``: the interval of the last pair starting at or before ``epoch``."""
    if isinstance(interval, int):
        return interval
    return [step for start, step in interval if start <= epoch][-1]


class ISTrainer:
    """Trains an EMC-Click model on ``trainset`` as the released configs did (see the README).

    Args:
        model: the network, already on ``config.device``.
        config: the experiment's :class:`TrainerConfig` (not modified).
        loss_cfg: ``<name>`` criterion and ``<name>_weight`` for the names of ``LOSS_NAMES``; a loss
            runs only when its weight is > 0.
        trainset, valset: ``ISDataset`` giving ``images`` (3 x H x W), ``instances`` (1 x H x W),
            ``points`` (2N x 3). Validation is off in every released config (``run``).
        optimizer, optimizer_params: name in ``{'sgd', 'adam', 'adamw'}`` and its arguments.
        lr_scheduler: ``partial`` of a torch scheduler, stepped once per epoch.
        checkpoint_interval: ``int`` or ``[(first_epoch, every), ...]``.
        image_dump_interval: write a picture of the batch every this many steps (<= 0: never).
        tb_dump_period: TensorBoard scalars are averaged over this many steps.
        metrics: train metrics updated with the backbone output (``AdaptiveIoU``).
        max_interactive_points: N, the click slots per type.
        max_num_next_clicks: simulated clicks are drawn from ``0 .. max_num_next_clicks - 1``...
        sample_prob_sigma: ... with probabilities ``∝ sample_prob_sigma ** k``.
        save_initial_checkpoint: also write ``checkpoints/init.pth`` before a fresh run's first step.
    """

    def __init__(self, model: nn.Module, config: TrainerConfig, loss_cfg, trainset, valset=None,
                 optimizer: str = "adam", optimizer_params: Optional[dict] = None, lr_scheduler=None,
                 checkpoint_interval: Union[int, Sequence[Tuple[int, int]]] = 10, image_dump_interval: int = 200,
                 tb_dump_period: int = 25, metrics: Optional[List] = None, max_interactive_points: int = 0,
                 max_num_next_clicks: int = 0, sample_prob_sigma: float = 0.8, save_initial_checkpoint: bool = False):
        self.config = config
        self.loss_cfg = loss_cfg
        self.max_interactive_points = max_interactive_points
        self.max_num_next_clicks = max_num_next_clicks
        self.sample_probs = generate_probs(max_num_next_clicks, sample_prob_sigma) if max_num_next_clicks else None
        self.image_dump_interval = image_dump_interval
        self.checkpoint_interval = checkpoint_interval
        self.tb_dump_period = tb_dump_period
        self.save_initial_checkpoint = save_initial_checkpoint
        self.train_metrics = list(metrics or [])
        self.is_master = config.rank == 0
        self.device = torch.device(config.device)
        self.sw = None

        self.batch_size = config.batch_per_process(du.get_world_size())
        self.trainset, self.valset = trainset, valset
        logger.info("Dataset of %d samples was loaded for training.", trainset.get_samples_number())
        self.train_data = self._loader(trainset, shuffle=True)
        self.val_data = self._loader(valset, shuffle=False) if valset is not None else None

        logger.info(model)
        self.optim = get_optimizer(model, optimizer, optimizer_params or {"lr": 1e-3}, logger)
        self.fp16 = config.fp16
        if self.fp16 and self.device.type != "cuda":
            logger.warning("--fp16 needs CUDA: training on %s in float32", self.device)
            self.fp16 = False
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.fp16)
        self.lr_scheduler = lr_scheduler(optimizer=self.optim) if lr_scheduler is not None else None

        self.start_epoch = config.start_epoch
        self._load_weights(model)
        self.net = self._wrap(model)

    # -- set-up ---------------------------------------------------------------------------------

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        batch_size = self.batch_size
        if self.config.distributed:
            sampler = DistributedSampler(dataset, shuffle=shuffle)
        else:
            sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        if len(dataset) // du.get_world_size() < batch_size:
            raise InputError(f"{type(dataset).__name__}: {len(dataset)} samples per epoch cannot fill one batch "
                             f"of {batch_size} per process (raise --epoch-len or lower --batch-size)")
        return DataLoader(dataset, batch_size, sampler=sampler, drop_last=True,
                          pin_memory=self.device.type == "cuda", num_workers=self.config.workers,
                          worker_init_fn=worker_init_fn, persistent_workers=self.config.workers > 0)

    def _wrap(self, model: nn.Module) -> nn.Module:
        config = self.config
        if config.distributed and self.device.type == "cuda":
            # As the original: every launched GPU run, a single process included, trains with
            # SyncBatchNorm under DDP (same Parameters: the optimizer stays valid).
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            logger.info("BatchNorm layers converted to SyncBatchNorm (%d processes)", du.get_world_size())
            return nn.parallel.DistributedDataParallel(model, device_ids=[config.local_rank],
                                                       output_device=config.local_rank, find_unused_parameters=True)
        if config.distributed and du.get_world_size() > 1:
            # gloo on CPU: SyncBatchNorm needs GPUs, so each process keeps its own batch statistics.
            return nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        if not config.distributed and self.device.type == "cuda" and len(config.gpu_ids) > 1:
            return nn.DataParallel(model, device_ids=list(config.gpu_ids), output_device=config.gpu_ids[0])
        return model

    @property
    def model(self) -> nn.Module:
        """The network without its DDP / DataParallel wrapper."""
        return self.net.module if hasattr(self.net, "module") else self.net

    def _load_weights(self, model: nn.Module) -> None:
        if self.config.weights:
            logger.info("Load weights from %s", self.config.weights)
            load_weights(model, read_checkpoint(self.config.weights, "--weights"))
        if self.config.resume:
            self._resume(model)
        elif self.start_epoch > 0:
            self._fast_forward_scheduler(self.start_epoch)

    def _resume(self, model: nn.Module) -> None:
        """``--resume-exp``: weights from the ``--resume-prefix`` checkpoint, the rest from its training state.

        ``latest`` (the default; the original's matched no file) is ``last_checkpoint.pth``; another
        prefix names one checkpoint ``<prefix>*.pth``. Without a training state (an interval
        checkpoint ``NNN.pth``) the optimizer starts afresh at ``--start-epoch``, by default the
        epoch after ``NNN``. A resume never overwrites a checkpoint that exists (see :meth:`run`).
        """
        folder = self.config.checkpoints_path
        prefix = self.config.resume_prefix
        if prefix == "latest":
            path = folder / f"{LAST}.pth"
            if not path.is_file():
                raise MissingFileError(f"--resume-exp: no {path} to resume from (--resume-prefix latest)")
        else:
            found = list_checkpoints(folder, prefix)
            if len(found) != 1:
                names = ", ".join(p.name for p in found) or "none"
                raise MissingFileError(f"--resume-exp: expected one checkpoint {folder}/{prefix}*.pth "
                                       f"(--resume-prefix {prefix!r}), found {names}")
            path = found[0]
        load_weights(model, read_checkpoint(path))
        state = load_state(model, path)
        if state is None:
            epoch = checkpoint_epoch(path)
            if self.start_epoch == 0 and epoch is not None:
                self.start_epoch = epoch + 1
            last = folder / f"{LAST}.pth"
            if path != last and last.is_file():
                raise CheckpointError(f"resuming from {path.name} would overwrite {last} at the end of epoch "
                                      f"{self.start_epoch}: resume from it (--resume-prefix latest), or start a "
                                      f"new experiment initialised with --weights {path}")
            logger.warning("Resumed weights from %s without a training state: the optimizer starts afresh at "
                           "epoch %d", path, self.start_epoch)
            self._fast_forward_scheduler(self.start_epoch)
            return
        self.optim.load_state_dict(state["optimizer"])
        if self.lr_scheduler is not None and state.get("lr_scheduler") is not None:
            sched = dict(state["lr_scheduler"])
            if "milestones" in sched:
                sched["milestones"] = Counter(sched["milestones"])
            self.lr_scheduler.load_state_dict(sched)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"]) + 1
        logger.info("Resumed from %s and its training state: continuing at epoch %d", path, self.start_epoch)

    def _fast_forward_scheduler(self, epochs: int) -> None:
        with warnings.catch_warnings():   # stepping the schedule before any optimizer step is the point here
            warnings.filterwarnings("ignore", ".*lr_scheduler.step.*before.*optimizer.step", UserWarning)
            for _ in range(epochs if self.lr_scheduler is not None else 0):
                self.lr_scheduler.step()

    # -- the loop --------------------------------------------------------------------------------

    def run(self, num_epochs: int, start_epoch: Optional[int] = None, validation: bool = False) -> None:
        """Train epochs ``start_epoch .. num_epochs - 1`` (validation is off, as in every released config).

        Refuses to start when it would overwrite an interval checkpoint ``NNN.pth`` that exists.
        """
        start = self.start_epoch if start_epoch is None else start_epoch
        folder = self.config.checkpoints_path
        clashes = [f"{epoch:03d}.pth" for epoch in range(start, num_epochs) if self._saves_interval(epoch)
                   and (folder / f"{epoch:03d}.pth").exists()]
        if self.save_initial_checkpoint and start == 0 and (folder / "init.pth").exists():
            clashes.insert(0, "init.pth")
        if clashes:
            raise CheckpointError(f"training epochs {start}..{num_epochs - 1} in {folder} would overwrite "
                                  f"{', '.join(clashes)}: resume after them (--resume-prefix, --start-epoch) or "
                                  "start a new experiment")
        logger.info("Starting Epoch: %d", start)
        logger.info("Total Epochs: %d", num_epochs)
        if self.is_master and self.save_initial_checkpoint and start == 0:
            save_checkpoint(self.net, folder / "init.pth")
        for epoch in range(start, num_epochs):
            self.training(epoch)
            if validation and self.val_data is not None:
                self.validation(epoch)
        if self.sw is not None:
            self.sw.close()

    def training(self, epoch: int) -> None:
        if self.sw is None and self.is_master:
            self.sw = SummaryWriterAvg(log_dir=str(self.config.logs_path), dump_period=self.tb_dump_period)
        if self.config.distributed:
            self.train_data.sampler.set_epoch(epoch)
        for metric in self.train_metrics:
            metric.reset_epoch_stats()
        self.net.train()
        log_prefix = "Train"
        data = self.train_data
        if self.is_master:
            data = tqdm(data, file=TqdmToLogger(logger, mininterval=5), ncols=100, mininterval=2)
        running = 0.0
        for i, batch in enumerate(data):
            global_step = epoch * len(self.train_data) + i
            loss, losses_logging, batch, outputs = self.batch_forward(batch)
            losses_logging["overall"] = loss.detach()
            losses_logging = du.reduce_loss_dict(losses_logging)
            overall = float(losses_logging["overall"])
            if not np.isfinite(overall):  # every rank sees the same reduced value and stops together
                raise FloatingPointError(f"non-finite training loss ({overall}) at epoch {epoch}, iteration {i} "
                                         f"(global step {global_step}); losses: "
                                         + ", ".join(f"{k}={float(v):.4g}" for k, v in losses_logging.items()))
            self.optim.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optim)
            self.scaler.update()
            running += overall
            if self.is_master:
                self._log_step(log_prefix, losses_logging, global_step, batch, outputs)
                data.set_description(f"Epoch {epoch}, training loss {running / (i + 1):.4f}")
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()
        if self.is_master:  # after the scheduler step: the saved state is the next epoch's
            for metric in self.train_metrics:
                self.sw.add_scalar(f"{log_prefix}Metrics/{metric.name}", metric.get_epoch_value(), epoch,
                                   disable_avg=True)
            self._save_checkpoints(epoch)

    def _log_step(self, prefix: str, losses: Dict[str, torch.Tensor], step: int, batch, outputs) -> None:
        for name, value in losses.items():
            self.sw.add_scalar(f"{prefix}Losses/{name}", float(value), step)
        for name in LOSS_NAMES:
            criterion = self.loss_cfg.get(name)
            if self.loss_cfg.get(name + "_weight", 0.0) > 0 and hasattr(criterion, "log_states"):
                criterion.log_states(self.sw, f"{prefix}Losses/{name}", step)
        if self.lr_scheduler is not None:
            self.sw.add_scalar(f"{prefix}States/learning_rate", self.lr_scheduler.get_last_lr()[-1], step)
        for metric in self.train_metrics:
            metric.log_states(self.sw, f"{prefix}Metrics/{metric.name}", step)
        if self.image_dump_interval > 0 and step % self.image_dump_interval == 0:
            self.save_visualization(batch, outputs, step, prefix="train")

    def _saves_interval(self, epoch: int) -> bool:
        interval = _checkpoint_interval(self.checkpoint_interval, epoch)
        return interval > 0 and epoch % interval == 0

    def _save_checkpoints(self, epoch: int) -> None:
        folder = self.config.checkpoints_path
        remove_stale_temporaries(folder)
        sched = None
        if self.lr_scheduler is not None:
            sched = self.lr_scheduler.state_dict()
            if isinstance(sched.get("milestones"), Counter):  # weights_only loading rejects Counter
                sched["milestones"] = dict(sched["milestones"])
        state = {"epoch": epoch, "optimizer": self.optim.state_dict(), "lr_scheduler": sched,
                 "scaler": self.scaler.state_dict() if self.fp16 else None}
        logger.info("Save checkpoint to %s", folder / f"{LAST}.pth")
        # The released format holds only weights and config; the rest of the state goes beside it.
        save_pair(self.net, state, folder / f"{LAST}.pth")
        if self._saves_interval(epoch):
            logger.info("Save checkpoint to %s", folder / f"{epoch:03d}.pth")
            save_checkpoint(self.net, folder / f"{epoch:03d}.pth")

    def validation(self, epoch: int) -> None:
        """Mean losses on ``valset`` (never called by the released configs, kept for experiments)."""
        totals: Dict[str, float] = {}
        batches = 0
        self.net.eval()
        with torch.no_grad():
            for batch in self.val_data:
                batches += 1
                loss, losses_logging, _, _ = self.batch_forward(batch, validation=True)
                losses_logging["overall"] = loss
                for name, value in du.reduce_loss_dict(losses_logging).items():
                    totals[name] = totals.get(name, 0.0) + float(value)
        if self.is_master:
            for name, value in totals.items():
                self.sw.add_scalar(f"ValLosses/{name}", value / max(1, batches), epoch, disable_avg=True)
        self.net.train()

    # -- one step ----------------------------------------------------------------------------------

    def batch_forward(self, batch: dict, validation: bool = False):
        """-> (loss, per-loss values, batch on the device with the simulated clicks, network outputs)."""
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        image, gt = batch["images"], batch["instances"]
        points = batch["points"].detach().cpu().numpy().astype(np.float32)
        points[points[..., 2] > 0] = -1  # the backbone pass starts from the first click(s) only
        half = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        autocast = torch.autocast(self.device.type, dtype=half, enabled=self.fp16)
        num_iters = int(np.random.choice(np.arange(self.max_num_next_clicks), p=self.sample_probs)) \
            if self.sample_probs is not None else 0
        # On the bare model: no DDP collectives in a loop whose length differs between ranks.
        points, prev_output, cached_lr = simulate_corrections(self.model, image, gt, points, num_iters,
                                                              self.max_interactive_points, autocast)
        batch["points"] = torch.from_numpy(points).to(self.device)
        batch["prev_mask"] = prev_output

        with torch.set_grad_enabled(not validation):
            with autocast:
                # The previous-mask channel is zero here: the model feeds it to nothing after click 1.
                output, refined_output = self.net(torch.cat([image, torch.zeros_like(prev_output)], dim=1),
                                                  batch["points"], cached_instances_lr=cached_lr)
            output = {k: v.float() if torch.is_tensor(v) else v for k, v in output.items()}
            refined_output = {k: v.float() for k, v in refined_output.items()}
            losses_logging: Dict[str, torch.Tensor] = {}
            loss = torch.zeros((), device=self.device)
            loss = self._add_loss("instance_loss", loss, losses_logging, output["instances"], gt)
            if "instances_aux" in output:
                loss = self._add_loss("instance_aux_loss", loss, losses_logging, output["instances_aux"], gt)
            loss = self._add_loss("instance_refine_loss", loss, losses_logging,
                                  refined_output["instances_refined"], gt)
            if self.is_master and not validation:
                with torch.no_grad():
                    for metric in self.train_metrics:
                        metric.update(output["instances"], gt)
        return loss, losses_logging, batch, output

    def _add_loss(self, name: str, total: torch.Tensor, logging_dict: dict, *inputs) -> torch.Tensor:
        weight = self.loss_cfg.get(name + "_weight", 0.0)
        if weight <= 0:
            return total
        value = torch.mean(self.loss_cfg.get(name)(*inputs))
        logging_dict[name] = value.detach()
        return total + weight * value

    def save_visualization(self, batch: dict, outputs: dict, step: int, prefix: str) -> None:
        """``vis/<prefix>/<step:06d>_iseg_baseline_vis.jpg`` of the batch's first sample."""
        folder = self.config.vis_path / prefix
        folder.mkdir(parents=True, exist_ok=True)
        image = batch["images"][0].detach().float().cpu().permute(1, 2, 0).numpy()
        gt = batch["instances"][0, 0].detach().cpu().numpy()
        prob = torch.sigmoid(outputs["instances"][0, 0]).detach().cpu().numpy()
        aux = torch.sigmoid(outputs.get("instances_aux", outputs["instances"])[0, 0]).detach().cpu().numpy()
        points = batch["points"][0].detach().cpu().numpy()
        save_training_panels(folder / f"{step:06d}_iseg_baseline_vis.jpg", image, points, gt, prob, aux)

