"""The children's output, as honcho shows it: every line as `name | line`,
names padded to one width, in our own stdout. With `--log-format json`,
every line is one JSON object instead: a child's own JSON line as it is,
anything else (redis-server's output, a stray print) wrapped in one with
the child's name as `process`, so every line of our output parses."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import TextIO

MAX_LINE = 65536  # longer output lines are forwarded in pieces


class OutputMux:
    """Writes every child's output line by line as `name | line`, names
    padded to one width, as honcho does."""

    def __init__(self, width: int, stream: TextIO | None = None, as_json: bool = False) -> None:
        self.width = width
        self.stream: TextIO | None = stream or sys.stdout
        self.as_json = as_json

    def write(self, name: str, line: str) -> None:
        """Never raises: if our own output is gone (`| head`), children's
        output is still drained, then dropped, so they never block."""
        if self.stream is None:
            return
        self.width = max(self.width, len(name))
        text = as_json_line(name, line) if self.as_json else f"{name:<{self.width}} | {line}"
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            self.stream = None

    async def forward(self, name: str, stream: asyncio.StreamReader) -> None:
        """Drain a child's stdout+stderr until EOF, else the child blocks
        once the pipe is full."""
        pending = b""
        while chunk := await stream.read(MAX_LINE):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) >= MAX_LINE:
                lines.append(pending)
                pending = b""
            for line in lines:
                self.write(name, line.decode("utf-8", "replace").rstrip("\r"))
        if pending:
            self.write(name, pending.decode("utf-8", "replace"))


def as_json_line(name: str, line: str) -> str:
    """`line` if it is a JSON object already, else `line` wrapped in one."""
    if line.startswith("{"):
        try:
            if isinstance(json.loads(line), dict):
                return line
        except ValueError:
            pass
    return json.dumps({"ts": datetime.now(UTC).isoformat(), "level": "INFO", "process": name,
                       "logger": "output", "msg": line})
