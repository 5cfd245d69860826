"""The worker's counters: one mutable object shared by the server (accepts,
framing drops, limits) and the publisher (stored lines, errors), read by the
heartbeat. Plain integers: everything runs on one event loop thread."""

from __future__ import annotations

import json
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
    tls_on_plain: int = 0  # closed: a TLS handshake on a plain port
    publish_errors: int = 0  # failed publish attempts (a retried batch counts each time)
    unpublished: int = 0  # lines read, not yet stored
    # Only on a guarded port (tcp_worker.admission), each cause pre-set to 0:
    tls_failed: dict[str, int] = field(default_factory=dict)  # handshakes, by cause
    proxy_errors: dict[str, int] = field(default_factory=dict)  # PROXY headers, by cause
    refused_source: int | None = None  # outside --tcp-allow
    subjects: dict[str, int] = field(default_factory=dict)  # open connections per TLS subject

    def count_subject(self, subject: str, change: int) -> None:
        count = self.subjects.get(subject, 0) + change
        if count > 0:
            self.subjects[subject] = count
        else:
            self.subjects.pop(subject, None)

    def heartbeat_fields(self) -> dict[str, str | int | float]:
        """The fields of docs/design.md ("Heartbeats"), plus dropped_tail
        truncated and framing_<cause> per cause of bad framing, and, on a
        guarded port, `tls_failed_<cause>`, `proxy_errors_<cause>`,
        `refused_source` and `subjects` (JSON: open connections per subject)."""
        fields = self._fields()
        if self.tls_failed or self.proxy_errors or self.refused_source is not None:
            fields.update({f"tls_failed_{k}": v for k, v in self.tls_failed.items()})
            fields.update({f"proxy_errors_{k}": v for k, v in self.proxy_errors.items()})
            if self.refused_source is not None:
                fields["refused_source"] = self.refused_source
            if self.tls_failed:
                fields["subjects"] = json.dumps(self.subjects, sort_keys=True)
        return fields

    def _fields(self) -> dict[str, str | int | float]:
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
            "tls_on_plain": self.tls_on_plain,
            "publish_errors": self.publish_errors,
            "unpublished": self.unpublished,
            "truncated": self.truncated,
            # one counter per cause of bad framing (connections closed for it)
            **{f"framing_{cause}": n for cause, n in self.framing_errors.items()},
        }
