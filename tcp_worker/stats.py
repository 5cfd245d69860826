"""The worker's counters: one mutable object shared by the server (accepts,
framing drops, limits) and the publisher (stored lines, errors), read by the
heartbeat. Plain integers: everything runs on one event loop thread."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .framings import CAUSES


@dataclass
class WorkerStats:
    """Counters since start (`connections` and `unpublished` are gauges)."""

    port: int
    host: str
    started: float
    state: str = "starting"
    pid: int = field(default_factory=os.getpid)
    connections: int = 0
    connections_total: int = 0
    lines: int = 0  # lines stored in Redis
    bytes: int = 0  # bytes read from TCP
    dropped_long: int = 0
    dropped_empty: int = 0
    dropped_tail: int = 0  # unterminated tails dropped on a forced close
    truncated: int = 0  # frames cut short by the sender's close (length-prefixed framings)
    framing_errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))
    rejected: int = 0  # over --max-connections
    idle_closed: int = 0
    publish_errors: int = 0  # failed publish attempts (a retried batch counts each time)
    unpublished: int = 0  # lines read, not yet stored

    def heartbeat_fields(self) -> dict[str, str | int | float]:
        """The fields of docs/design.md ("Heartbeats"), plus dropped_tail, truncated
        and framing_<cause> per cause of bad framing."""
        return {
            "kind": "tcp",
            "host": self.host,
            "pid": self.pid,
            "state": self.state,
            "started": f"{self.started:.3f}",
            "port": self.port,
            "connections": self.connections,
            "connections_total": self.connections_total,
            "lines": self.lines,
            "bytes": self.bytes,
            "dropped_long": self.dropped_long,
            "dropped_empty": self.dropped_empty,
            "dropped_tail": self.dropped_tail,
            "rejected": self.rejected,
            "idle_closed": self.idle_closed,
            "publish_errors": self.publish_errors,
            "unpublished": self.unpublished,
            "truncated": self.truncated,
            # one counter per cause of bad framing (connections closed for it)
            **{f"framing_{cause}": n for cause, n in self.framing_errors.items()},
        }
