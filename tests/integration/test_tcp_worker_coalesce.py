"""The coalescing window of `python -m tcp_worker`, end to end: many slow
connections share calls without losing or reordering a line, each keeps
its own acks, and a lone line is not held by the window."""

from __future__ import annotations

import random
import socket
import time
from typing import Any

import redis

from tcpws.protocol import LIVE_CHANNEL, STREAM_KEY, decode_live, entry_from_stream
from testkit.procs import wait_until
from tests.integration.test_tcp_worker import read_acks
from tests.support.tcp_worker import StartWorker

CONNECTIONS = 200
LINES_EACH = 20


def live(pubsub: redis.client.PubSub) -> list[dict[str, Any]]:
    """Every live message already received."""
    messages = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        messages.append(message)
    return messages


def open_many(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(count)]


def send_interleaved(socks: list[socket.socket], lines_each: list[int]) -> None:
    """One line per write, the connections taking turns in a shuffled order,
    fast enough for the window to open."""
    rng = random.Random(7)
    turns = [i for i, n in enumerate(lines_each) for _ in range(n)]
    rng.shuffle(turns)
    sent = [0] * len(socks)
    for k, i in enumerate(turns):
        socks[i].sendall(b"c%d l%d\n" % (i, sent[i]))
        sent[i] += 1
        if k % 50 == 0:
            time.sleep(0.001)  # spread over time, as devices do


def test_many_slow_connections_lose_nothing_and_keep_their_order(
        redis_url: str, start_worker: StartWorker) -> None:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(LIVE_CHANNEL)
    assert pubsub.get_message(timeout=5) is not None  # the subscribe confirmation
    _, port = start_worker(redis_url, "--coalesce-ms", "2")
    socks = open_many(port, CONNECTIONS)
    try:
        send_interleaved(socks, [LINES_EACH] * CONNECTIONS)
        peers = {f"127.0.0.1:{s.getsockname()[1]}": i for i, s in enumerate(socks)}

        def stored() -> int:
            return sum(e.line_count for e in
                       (entry_from_stream(i, f) for i, f in client.xrange(STREAM_KEY)))
        wait_until(lambda: stored() >= CONNECTIONS * LINES_EACH, 30, what="every line stored")
    finally:
        for sock in socks:
            sock.close()
    entries = [entry_from_stream(i, f) for i, f in client.xrange(STREAM_KEY)]
    per_conn: dict[int, list[str]] = {}
    for entry in entries:
        for peer, line in zip(entry.peers, entry.lines, strict=True):
            conn = peers[peer]
            assert line.startswith(f"c{conn} ")
            per_conn.setdefault(conn, []).append(line)
    assert per_conn == {i: [f"c{i} l{n}" for n in range(LINES_EACH)]
                        for i in range(CONNECTIONS)}
    # Calls were shared: some live message, and some stream entry, carried
    # several connections' lines.
    assert max(len({p for e in decode_live(m["data"]) for p in e.peers})
               for m in live(pubsub)) > 1
    assert max(len(set(e.peers)) for e in entries) > 1


def test_each_connection_is_acked_for_its_own_lines(redis_url: str,
                                                    start_worker: StartWorker) -> None:
    _, port = start_worker(redis_url, "--ack", "--coalesce-ms", "2")
    counts = [1 + (i * 7) % 23 for i in range(100)]
    socks = open_many(port, len(counts))
    try:
        send_interleaved(socks, counts)
        for sock in socks:
            sock.shutdown(socket.SHUT_WR)
        assert [read_acks(sock) for sock in socks] == counts
    finally:
        for sock in socks:
            sock.close()


def test_a_lone_line_is_not_held_by_the_window(redis_url: str,
                                               start_worker: StartWorker) -> None:
    """With a window of half a second, lines that each come after a quiet
    spell longer than that go at once: five round trips (line, then its ack)
    take far less than the 2.5 s the window would add if it held each."""
    _, port = start_worker(redis_url, "--ack", "--coalesce-ms", "500")
    waited = 0.0
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        for n in range(5):
            time.sleep(0.6)  # quiet for longer than the window: each line is alone
            sent = time.monotonic()
            sock.sendall(b"lone %d\n" % n)
            assert sock.recv(100) == b"+1\n"
            waited += time.monotonic() - sent
    assert waited < 1.5, f"5 lone lines took {waited:.1f} s to be acked with a 0.5 s window"
