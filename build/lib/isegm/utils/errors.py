"""The project's error types for bad input: the CLIs print their message in one line and exit non-zero.

Each message names the culprit (the file, key or argument). Each type also derives from the
builtin exception a caller would expect (``ValueError``, ``KeyError``, ``FileNotFoundError``...), so
``except ValueError`` keeps working. Errors that signal a bug stay Python's own exceptions and keep
their traceback.
"""
from __future__ import annotations


class EMCClickError(Exception):
    """Base of every error caused by input the user can fix (a file, a config key, an argument)."""


class InputError(EMCClickError, ValueError):
    """A bad argument, image, mask, click or config value."""


class MissingFileError(EMCClickError, FileNotFoundError):
    """A file or folder that should exist does not."""


class CheckpointError(EMCClickError, RuntimeError):
    """A checkpoint file or dict that cannot be used; the message names the file and the key or class."""


class DataError(EMCClickError, RuntimeError):
    """A dataset or one of its samples that cannot be used; the message names the dataset and the sample."""


class ConfigKeyError(EMCClickError, KeyError):
    """A name or config key that is unknown, missing or empty (a model, dataset or ``config.yml`` key)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""
