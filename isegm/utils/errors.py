"""The project's error types for bad input: the CLIs print their message in one line and exit non-zero.

Each message names the culprit (the file, key or argument). Errors that signal a bug are left as
Python's own exceptions, so they keep their traceback.
"""
from __future__ import annotations


class EMCClickError(Exception):
    """Base of every error caused by input the user can fix (a file, a config key, an argument)."""


class CheckpointError(EMCClickError, RuntimeError):
    """A checkpoint file or dict that cannot be used; the message names the file and the key or class."""


class ConfigKeyError(EMCClickError, KeyError):
    """A name or config key that is unknown, missing or empty (a model, dataset or ``config.yml`` key)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""
