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
