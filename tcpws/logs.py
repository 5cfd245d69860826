"""Logging set-up shared by every process: one line per record, the
process's name in each (the supervisor adds its own prefix per child).

`fmt="json"`: one JSON object per line (python-json-logger) with `ts`
(ISO 8601, UTC), `level`, `process` (the process's name: `supervisor`,
`web.1`, `tcp.8001.2`), `logger`, `msg`, `pid`, and whatever a call passes
as `extra=` (exit codes, counts); a traceback is the `exc_info` field, so
even a crash stays one line."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("text", "json")
RENAMED = {"levelname": "level", "name": "logger", "message": "msg"}


class JsonLines(JsonFormatter):
    """python-json-logger with our field names and the process's name."""

    def __init__(self, process: str) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s", rename_fields=RENAMED,
                         timestamp="ts")
        self.process_name = process

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["process"] = self.process_name
        log_record.setdefault("pid", record.process)


def formatter(name: str, fmt: str, text: str, datefmt: str | None = None) -> logging.Formatter:
    """The JSON formatter for `fmt` "json", else a text one with `text`."""
    return JsonLines(name) if fmt == "json" else logging.Formatter(text, datefmt)


def setup_logging(name: str, level: str = "INFO", fmt: str = "text",
                  stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(name, fmt, f"%(levelname)s {name} %(name)s: %(message)s"))
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
