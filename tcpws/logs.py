"""Logging set-up shared by every process: one line per record, the
process's name in each (the supervisor adds its own prefix per child)."""

from __future__ import annotations

import logging
import sys
import time


def setup_logging(name: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(levelname)s {name} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class CauseLog:
    """The first refusal of each cause is logged; later ones at most once
    per `every` seconds, with how many were not logged."""

    def __init__(self, logger: logging.Logger, every: float = 60.0) -> None:
        self._logger, self._every = logger, every
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def note(self, cause: str, message: str) -> None:
        now = time.monotonic()
        last = self._last.get(cause)
        if last is not None and now - last < self._every:
            self._unlogged[cause] = self._unlogged.get(cause, 0) + 1
            return
        self._last[cause] = now
        more = self._unlogged.pop(cause, 0)
        self._logger.warning("%s%s", message,
                             f" ({more} more of this cause since the last line)" if more else "")
