"""Talking to a running `python -m tcp_worker` and reading what it stored
(the `start_worker` fixture is in tests/integration/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import redis

from tcpws.protocol import STREAM_KEY, entry_from_stream
from testkit.procs import Proc

StartWorker = Callable[..., tuple[Proc, int]]


def stored_lines(client: redis.Redis) -> list[str]:
    entries = [entry_from_stream(i, f) for i, f in client.xrange(STREAM_KEY)]
    return [line for e in entries for line in e.lines]


def heartbeat(client: redis.Redis, port: int) -> dict[str, str]:
    for key in client.scan_iter("tcpws:worker:*"):
        fields = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        if fields.get("port") == str(port):
            return fields
    return {}
