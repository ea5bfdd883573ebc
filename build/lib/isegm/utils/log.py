"""Training logs: the ``isegm`` logger's handlers, tqdm routed to it, and a TensorBoard writer that averages scalars."""
from __future__ import annotations

import io
import logging
import os
import time
from datetime import datetime
from typing import Dict, List, Optional

from isegm.utils.distributed import get_rank

LOG_FORMAT = "(%(levelname)s) %(asctime)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


LOGGER_NAME = "isegm"
"""The project's logger namespace: every module logs under ``isegm.<module>``, so the handlers set
here (the console and the training log file) receive every line."""


def setup_logging(logs_path: Optional[str] = None, prefix: str = "train") -> logging.Logger:
    """Configure the ``isegm`` logger: INFO on rank 0 (ERROR elsewhere), to stderr and, with
    ``logs_path``, to ``<logs_path>/<prefix>_<time>.log``.

    Calling it again keeps one console handler and moves the file handler to the new
    ``logs_path`` (a second experiment in the same process gets its own file).
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO if get_rank() == 0 else logging.ERROR)
    logger.propagate = False
    formatter = logging.Formatter(fmt=LOG_FORMAT, datefmt=DATE_FORMAT)
    for handler in list(logger.handlers):
        if getattr(handler, "_isegm_file", False) and logs_path is not None:
            logger.removeHandler(handler)
            handler.close()
    if not any(getattr(h, "_isegm_console", False) for h in logger.handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        stream._isegm_console = True
        logger.addHandler(stream)
    if logs_path is not None and get_rank() == 0:
        os.makedirs(logs_path, exist_ok=True)
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        file_handler = logging.FileHandler(os.path.join(logs_path, f"{prefix}_{stamp}.log"))
        file_handler.setFormatter(formatter)
        file_handler._isegm_file = True
        logger.addHandler(file_handler)
    return logger


class TqdmToLogger(io.StringIO):
    """A file for ``tqdm(file=...)`` that passes the latest bar to a logger at most every ``mininterval`` s."""

    def __init__(self, logger: logging.Logger, level: int = logging.INFO, mininterval: float = 5.0):
        super().__init__()
        self.logger = logger
        self.level = level
        self.mininterval = mininterval
        self.last_time = 0.0
        self.buf = ""

    def write(self, buf: str) -> int:
        text = buf.strip("\r\n\t ")
        if text:
            self.buf = text
        return len(buf)

    def flush(self) -> None:
        now = time.time()
        if self.buf and now - self.last_time >= self.mininterval:
            self.logger.log(self.level, self.buf)
            self.last_time = now


class SummaryWriterAvg:
    """``torch.utils.tensorboard.SummaryWriter`` whose ``add_scalar`` writes the mean of every
    ``dump_period`` values of a tag (at the last one's step); ``disable_avg=True`` writes at once.

    Created only on rank 0 by the trainer. Other methods are passed to the wrapped writer.
    """

    def __init__(self, log_dir: str, dump_period: int = 25, flush_secs: int = 10):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=log_dir, flush_secs=flush_secs)
        self._dump_period = dump_period
        self._pending: Dict[str, List[float]] = {}

    def add_scalar(self, tag: str, value, global_step: Optional[int] = None, disable_avg: bool = False) -> None:
        value = float(value)
        if disable_avg or self._dump_period <= 1:
            self._writer.add_scalar(tag, value, global_step)
            return
        values = self._pending.setdefault(tag, [])
        values.append(value)
        if len(values) >= self._dump_period:
            self._writer.add_scalar(tag, sum(values) / len(values), global_step)
            values.clear()

    def __getattr__(self, name):
        return getattr(self._writer, name)

    def close(self) -> None:
        self._writer.close()
