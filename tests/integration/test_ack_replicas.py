"""--ack-replicas N: a batch is acked only once N replicas hold it (Redis
WAIT after the script call). Real master, real replica: with none attached
the lines are stored on the master but never acked (and retried, not
stored twice); once a replica has synced, every line is acked."""

from __future__ import annotations

import socket
from pathlib import Path

import redis

from tcpws.redis_server import find_redis_server, redis_argv
from testkit.procs import Proc, RedisServer, free_port, wait_until
from tests.integration.test_tcp_worker_publish import read_acks
from tests.support.tcp_worker import StartWorker, stored_lines


def acks_within(sock: socket.socket, seconds: float) -> int:
    """Acks that arrive within `seconds` (0 if none)."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        pass
    return sum(int(n[1:]) for n in data.split(b"\n") if n)


def test_acked_only_once_a_replica_holds_the_lines(start_worker: StartWorker,
                                                   tmp_path: Path) -> None:
    master = RedisServer()
    replica: Proc | None = None
    try:
        _, port = start_worker(master.url, "--ack", "--ack-replicas", "1")
        client = redis.Redis.from_url(master.url)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sender:
            sender.sendall(b"one\ntwo\n")
            wait_until(lambda: stored_lines(client) == ["one", "two"], 10,
                       what="the lines stored on the master")
            # No replica: not confirmed, so not acked (the retries store nothing again).
            assert acks_within(sender, 2.5) == 0
            assert stored_lines(client) == ["one", "two"]
            rport = free_port()
            replica = Proc([*redis_argv(find_redis_server(), port=rport),
                            "--replicaof", "127.0.0.1", str(master.port),
                            "--dir", str(tmp_path)],  # its synced RDB goes there
                           cwd=tmp_path, name="replica")
            assert read_acks(sender, 2, timeout=30) == 2
            sender.sendall(b"three\n")
            assert read_acks(sender, 1, timeout=15) == 1
        assert stored_lines(client) == ["one", "two", "three"]
        info = client.info("replication")
        assert info["connected_slaves"] == 1
        client.close()
    finally:
        if replica is not None:
            replica.stop(timeout=5)
        master.stop()
