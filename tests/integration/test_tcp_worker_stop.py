"""`python -m tcp_worker` when Redis goes away and when it is told to stop:
no line that was read is lost, and the exit code says whether all of them
were stored."""

from __future__ import annotations

import signal
import socket

import redis

from testkit.procs import RedisServer, wait_until
from tests.support.tcp_worker import Dialer, StartWorker, stored_lines


def read_acks_until(sock: socket.socket, total: int, timeout: float = 20) -> int:
    sock.settimeout(timeout)
    got = 0
    buf = b""
    while got < total:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {got} of {total} acks"
        buf += chunk
        *done, buf = buf.split(b"\n")
        got += sum(int(x[1:]) for x in done if x)
    return got


def test_redis_outage_loses_nothing_and_worker_stays_up(private_redis: RedisServer,
                                                        start_worker: StartWorker) -> None:
    proc, port = start_worker(private_redis.url, "--ack")
    client = redis.Redis.from_url(private_redis.url)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"".join(b"before %d\n" % i for i in range(100)))
        assert read_acks_until(sock, 100) == 100
        client.close()
        private_redis.kill()
        during = [f"during {i}" for i in range(1000)]
        sock.sendall("".join(f"{line}\n" for line in during).encode())
        proc.wait_for_output("cannot publish to Redis")
        private_redis.start()
        assert read_acks_until(sock, 1000) == 1000
    assert proc.popen.poll() is None
    client = redis.Redis.from_url(private_redis.url)
    assert stored_lines(client) == during  # the restarted Redis is empty but for these
    client.close()
    assert proc.output().count("cannot publish to Redis") == 1  # once per outage
    proc.wait_for_output(r"Redis at \S+ back after")
    assert "Traceback" not in proc.output()


def test_sigterm_drains_busy_connections_and_exits_0(redis_url: str, start_worker: StartWorker,
                                                     dialer: Dialer) -> None:
    proc, port = start_worker(redis_url, "--drain-timeout", "10", *dialer.args)
    client = redis.Redis.from_url(redis_url)
    idle = dialer.connect(port)
    busy = dialer.connect(port)
    # Every write ends in the middle of a line, so the connection is never
    # idle from the worker's point of view: it must wait for our close.
    stream = b"".join(b"busy line %d\n" % i for i in range(3000))
    cut = 0
    for i in range(10):
        nxt = stream.index(b"\n", cut + 1000) + 3
        busy.sendall(stream[cut:nxt])
        cut = nxt
        if i == 0:
            wait_until(lambda: stored_lines(client), 10, what="first lines stored")
    proc.signal(signal.SIGTERM)
    proc.wait_for_output("draining")
    assert idle.recv(100) == b""  # the idle connection is closed at once
    busy.sendall(stream[cut:])  # the busy one finishes what it was sending
    busy.shutdown(socket.SHUT_WR)
    assert busy.recv(100) == b""
    assert proc.wait(20) == 0
    assert stored_lines(client) == [f"busy line {i}" for i in range(3000)]
    idle.close()
    busy.close()
    client.close()


def test_sigterm_with_redis_gone_exits_1_and_counts(private_redis: RedisServer,
                                                    start_worker: StartWorker) -> None:
    proc, port = start_worker(private_redis.url, "--drain-timeout", "0.5")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"stored\n")
        client = redis.Redis.from_url(private_redis.url)
        wait_until(lambda: stored_lines(client) == ["stored"], 10, what="first line")
        client.close()
        private_redis.kill()
        sock.sendall(b"a\nb\nc\nd\ne\n")
        proc.wait_for_output("cannot publish to Redis")
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 1
    assert "5 lines could not be published" in proc.output()
    assert "Traceback" not in proc.output()


def test_waits_for_redis_at_start_and_honours_a_stop_meanwhile(
        private_redis: RedisServer, start_worker: StartWorker) -> None:
    private_redis.kill()
    waiting, port = start_worker(private_redis.url, ready=False)
    stopped, _ = start_worker(private_redis.url, ready=False)
    waiting.wait_for_output("not reachable")
    stopped.wait_for_output("not reachable")
    stopped.signal(signal.SIGHUP)  # tcp workers treat SIGHUP like SIGTERM
    assert stopped.wait(10) == 0
    private_redis.start()
    waiting.wait_for_output("ready on")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"late but fine\n")
    client = redis.Redis.from_url(private_redis.url)
    wait_until(lambda: stored_lines(client) == ["late but fine"], 10, what="line stored")
    client.close()
    for proc in (waiting, stopped):
        assert "Traceback" not in proc.output()
