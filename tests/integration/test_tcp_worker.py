"""`python -m tcp_worker` against a real redis-server, over real sockets:
framing end to end, the stream + live channel layout, acks, limits, and
the CLI's exit codes. Redis outages and shutdown: test_tcp_worker_stop.py."""

from __future__ import annotations

import socket
import time

import redis

from tcpws.protocol import LIVE_CHANNEL, STREAM_KEY, decode_live, entry_from_stream
from testkit.procs import Proc, python_module, wait_until
from tests.support.tcp_worker import StartWorker, heartbeat, stored_lines


def wait_for_lines(client: redis.Redis, count: int, timeout: float = 15) -> list[str]:
    wait_until(lambda: len(stored_lines(client)) >= count, timeout,
               what=f"{count} lines in the stream")
    return stored_lines(client)


def read_acks(sock: socket.socket, timeout: float = 15) -> int:
    """Sum every `+N` the worker writes until it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    assert data == b"" or data.endswith(b"\n"), data
    return sum(int(line[1:]) for line in data.split(b"\n") if line)


def wait_for_counter(client: redis.Redis, port: int, name: str, value: int) -> None:
    wait_until(lambda: heartbeat(client, port).get(name) == str(value), 10,
               what=f"heartbeat {name}={value}")


def test_lines_go_to_the_stream_and_the_live_channel(redis_url: str,
                                                     start_worker: StartWorker) -> None:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(LIVE_CHANNEL)
    assert pubsub.get_message(timeout=5) is not None  # subscribe confirmation
    _, port = start_worker(redis_url)
    sent = [f"line {i} ünïcode" for i in range(500)]
    with socket.create_connection(("127.0.0.1", port)) as a, \
            socket.create_connection(("127.0.0.1", port)) as b:
        a.sendall("".join(f"{s}\n" for s in sent[:250]).encode())
        b.sendall("".join(f"{s}\n" for s in sent[250:]).encode())
        lines = wait_for_lines(client, 500)
        peers = {f"127.0.0.1:{a.getsockname()[1]}", f"127.0.0.1:{b.getsockname()[1]}"}
    assert sorted(lines) == sorted(sent)
    entries = [entry_from_stream(i, f) for i, f in client.xrange(STREAM_KEY)]
    assert {e.port for e in entries} == {port}
    assert {p for e in entries for p in e.peers} == peers
    assert all(abs(e.ts - time.time()) < 60 for e in entries)
    live: list[str] = []
    while len(live) < 500:
        msg = pubsub.get_message(timeout=5)
        assert msg is not None, f"live channel gave only {len(live)} lines"
        if msg["type"] == "message":
            live += [line for e in decode_live(msg["data"]) for line in e.lines]
    assert live == lines  # same lines, same (stream) order
    pubsub.close()
    wait_for_counter(client, port, "lines", 500)


def test_framing_rules_end_to_end(redis_url: str, start_worker: StartWorker) -> None:
    client = redis.Redis.from_url(redis_url)
    _, port = start_worker(redis_url, "--max-line-bytes", "1000")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"crlf\r\nbare\rcr\n\n\r\nbad \xff\xfe utf8\nnul\x00byte\n")
        sock.sendall(b"x" * 1_048_576)  # 1 MiB line, no newline yet
        sock.sendall(b"\nstill usable\ntail without newline")
    lines = wait_for_lines(client, 6)
    assert lines == ["crlf", "bare\rcr", "bad \ufffd\ufffd utf8", "nul\x00byte",
                     "still usable", "tail without newline"]
    wait_for_counter(client, port, "dropped_long", 1)
    beat = heartbeat(client, port)
    assert beat["dropped_empty"] == "2"
    assert beat["kind"] == "tcp"


def test_acks_count_every_line_sent_even_after_half_close(redis_url: str,
                                                         start_worker: StartWorker) -> None:
    client = redis.Redis.from_url(redis_url)
    _, port = start_worker(redis_url, "--ack", "--max-line-bytes", "100")
    body = b"".join(b"line %d\n" % i for i in range(2000))
    body += b"\n" + b"y" * 5000 + b"\n" + b"last one, unterminated"
    sent_lines = 2000 + 2 + 1  # an empty line and a long one count too
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(body)
        sock.shutdown(socket.SHUT_WR)
        assert read_acks(sock) == sent_lines
    assert len(stored_lines(client)) == 2001


def test_ack_arrives_while_the_connection_stays_open(redis_url: str,
                                                    start_worker: StartWorker) -> None:
    _, port = start_worker(redis_url, "--ack")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"one\ntwo\n")
        got = 0
        while got < 2:
            got += sum(int(x[1:]) for x in sock.recv(100).split(b"\n") if x)
        assert got == 2


def test_max_connections_rejects_with_one_line(redis_url: str,
                                               start_worker: StartWorker) -> None:
    client = redis.Redis.from_url(redis_url)
    _, port = start_worker(redis_url, "--max-connections", "1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as first:
        first.sendall(b"first\n")
        assert wait_for_lines(client, 1) == ["first"]  # accepted and counted
        with socket.create_connection(("127.0.0.1", port), timeout=10) as second:
            assert second.recv(100) == b"-ERR too many connections\n"
            assert second.recv(100) == b""
        first.sendall(b"first still works\n")
        assert wait_for_lines(client, 2) == ["first", "first still works"]
    wait_for_counter(client, port, "rejected", 1)


def test_idle_connection_is_closed_and_counted(redis_url: str,
                                               start_worker: StartWorker) -> None:
    client = redis.Redis.from_url(redis_url)
    _, port = start_worker(redis_url, "--idle-timeout", "0.5")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"hello\n")
        assert sock.recv(100) == b""  # closed by the worker, not by the 10 s time-out
    wait_for_counter(client, port, "idle_closed", 1)
    assert stored_lines(client) == ["hello"]


def test_bad_flag_exits_2_with_one_line() -> None:
    proc = Proc(python_module("tcp_worker", "--max-connections", "zero"), name="bad")
    assert proc.wait(20) == 2
    assert proc.output().strip().count("\n") == 0
    assert "--max-connections" in proc.output() and "not an integer" in proc.output()


def test_bad_port_env_exits_2() -> None:
    proc = Proc(python_module("tcp_worker"), env={"PORT": "99999"}, name="bad")
    assert proc.wait(20) == 2
    assert "not a TCP port" in proc.output()


def test_busy_port_exits_2_with_one_line(redis_url: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = Proc(python_module("tcp_worker", "--port", str(port)),
                    env={"REDIS_URL": redis_url}, name="busy")
        assert proc.wait(20) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.output()
    assert "Traceback" not in proc.output()
