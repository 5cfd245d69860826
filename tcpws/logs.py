"""Logging set-up shared by every process: one line per record, the
process's name in each (the supervisor adds its own prefix per child)."""

from __future__ import annotations

import logging
import sys


def setup_logging(name: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(levelname)s {name} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
