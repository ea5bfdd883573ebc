"""How the command-line tools end on bad input: one line naming the culprit and a non-zero exit."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Optional, Sequence

from isegm.utils.errors import EMCClickError

DEBUG_ENV = "EMCCLICK_DEBUG"
"""Set to 1 to see the traceback of an expected error (as ``--debug`` does)."""

EXPECTED = (EMCClickError, FileNotFoundError)
"""What bad input raises: the project's own error types, and a missing file (its message names it)."""


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show the traceback of an expected error instead of one line."""
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error instead of one line (or set {DEBUG_ENV}=1)")


def run_cli(main: Callable[[Optional[Sequence[str]]], Any], argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)``; -> the exit status.

    An expected error (:data:`EXPECTED`) prints ``<program>: error: <message>`` on one line of
    stderr and gives status 1, unless ``--debug`` is among the arguments or ``EMCCLICK_DEBUG=1``,
    which re-raise it with its traceback. Anything else is a bug and keeps its traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        main(args)
    except EXPECTED as exc:
        if debug:
            raise
        message = " ".join(str(exc).split())
        print(f"{os.path.basename(sys.argv[0] or 'emcclick')}: error: {message}", file=sys.stderr, flush=True)
        return 1
    return 0

