"""Lines as each framing method sends them (what `--framing` expects on a
port): one shared encoder for the senders of every bench."""

from __future__ import annotations

import struct

METHODS = ("newline", "octet-count", "syslog", "length32")


def frame(framing: str, line: bytes) -> bytes:
    """One line (without its "\\n") framed by `framing`."""
    if framing in ("octet-count", "syslog"):
        return b"%d %s" % (len(line), line)
    if framing == "length32":
        return struct.pack(">I", len(line)) + line
    return line + b"\n"


def reframe(payload: bytes, framing: str) -> bytes:
    """Newline-terminated lines, framed by `framing` instead."""
    if framing == "newline":
        return payload
    return b"".join(frame(framing, line) for line in payload.split(b"\n")[:-1])
