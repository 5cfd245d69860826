"""Connection churn over the connection limit leaks no file descriptors,
and every accepted connection's line is stored; the supervisor's socket and
readiness hand-over works."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import redis

from tcpws.lifecycle import bind_listener
from testkit.procfs import open_fds
from testkit.procs import python_module, wait_until
from tests.support.tcp_worker import StartWorker, heartbeat, stored_lines


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
    rounds = 2
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


def test_serves_an_inherited_socket_and_notifies_readiness(redis_url: str) -> None:
    """The supervisor protocol: TCPWS_LISTEN_FD, TCPWS_NOTIFY_FD, TCPWS_PARENT_PID."""
    listener = bind_listener("127.0.0.1", 0)
    port = listener.getsockname()[1]
    read_end, write_end = os.pipe()
    env = dict(os.environ, REDIS_URL=redis_url, TCPWS_NAME="tcp.inherited.1",
               TCPWS_LISTEN_FD=str(listener.fileno()), TCPWS_NOTIFY_FD=str(write_end),
               TCPWS_PARENT_PID=str(os.getpid()))
    child = subprocess.Popen(python_module("tcp_worker", "--port", "1"), env=env,
                             pass_fds=(listener.fileno(), write_end),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    os.close(write_end)
    client = redis.Redis.from_url(redis_url)
    try:
        with os.fdopen(read_end, "rb") as ready:
            assert ready.readline() == b"READY\n"  # EOF instead would mean it died
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"via the inherited socket\n")
        wait_until(lambda: stored_lines(client) == ["via the inherited socket"], 10,
                   what="line stored")
        beat = heartbeat(client, port)
        assert beat["name"].endswith("/tcp.inherited.1")
        assert any(c.get("name") == "tcpws-tcp:tcp.inherited.1" for c in client.client_list())
        child.send_signal(signal.SIGTERM)
        assert child.wait(15) == 0
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(5)
        listener.close()
        client.close()
