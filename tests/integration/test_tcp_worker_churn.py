"""Connection churn over the connection limit leaks no file descriptors,
and every accepted connection's line is stored."""

from __future__ import annotations

import os
import socket

import redis

from tests.helpers import wait_until
from tests.integration.test_tcp_worker import StartWorker, heartbeat, start_worker, stored_lines

__all__ = ["start_worker"]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_churn_over_the_limit_leaks_nothing(redis_url: str, start_worker: StartWorker) -> None:
    proc, port = start_worker(redis_url, "--max-connections", "200")
    client = redis.Redis.from_url(redis_url)

    def settled(total: int) -> bool:
        """A heartbeat after `total` accepts shows none of them open."""
        beat = heartbeat(client, port)
        return beat.get("connections_total") == str(total) and beat.get("connections") == "0"

    with socket.create_connection(("127.0.0.1", port)) as warm:
        warm.sendall(b"warm-up\n")
        wait_until(lambda: stored_lines(client) == ["warm-up"], 10, what="warm-up")
    wait_until(lambda: settled(1), 10, what="warm-up connection gone")
    baseline = open_fds(proc.pid)
    rounds = 3
    for r in range(rounds):
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(250)]
        for i, sock in enumerate(socks):
            sock.sendall(b"round %d conn %d\n" % (r, i))
        total = 1 + 200 * (r + 1)
        wait_until(lambda: len(stored_lines(client)) == total, 15,  # noqa: B023
                   what=f"round {r} stored")
        for sock in socks:
            sock.close()
        wait_until(lambda: settled(total), 10, what=f"round {r} connections gone")  # noqa: B023
    wait_until(lambda: heartbeat(client, port).get("rejected") == str(50 * rounds), 10,
               what="rejections counted")
    # Redis connections may come and go (heartbeat and publish share a pool).
    assert open_fds(proc.pid) <= baseline + 2
    client.close()
