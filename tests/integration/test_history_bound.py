"""The history is bounded in lines (`--history-maxlen`), not in entries: an
entry may carry one line or a thousand (a big read, or the lines of many
connections in one call), and the memory must stay flat either way, while
the last maxlen lines stay there for resumes."""

from __future__ import annotations

import socket

import redis

from tcpws.protocol import (
    HISTORY_LINES_KEY,
    PUBLISH_SCRIPT,
    STREAM_KEY,
    entry_from_stream,
    publish_args,
    publish_keys,
)
from tests.support.tcp_worker import StartWorker, read_acks


def held(client: redis.Redis) -> list[int]:
    """The numbers of the lines in the history, oldest first."""
    return [int(line) for i, f in client.xrange(STREAM_KEY)
            for line in entry_from_stream(i, f).lines]


def test_the_history_keeps_the_last_maxlen_lines_when_entries_carry_many(
        redis_url: str) -> None:
    maxlen, per_entry, calls = 6400, 40, 1000  # 80,000 lines in 2,000 entries
    client = redis.Redis.from_url(redis_url)
    sha = client.script_load(PUBLISH_SCRIPT)
    usage: dict[int, int] = {}
    try:
        n = 0
        for call in range(1, calls + 1):
            batch = []
            for _ in range(2):
                batch.append((8001, "peer:1", 1.0, "\n".join(str(n + k) for k in range(per_entry))))
                n += per_entry
            client.evalsha(sha, 2, *publish_keys(), *publish_args(maxlen, batch))
            if call in (200, 1000):  # 2.5 and 12.5 times the history's size
                lines = held(client)
                # At least the last maxlen lines, none missing before the
                # newest: a resume gets every line the history holds.
                assert lines == list(range(n - len(lines), n))
                # At most about maxlen + 2 steps + a call + one stream node.
                assert maxlen <= len(lines) <= maxlen * 1.15, len(lines)
                usage[call] = (client.memory_usage(STREAM_KEY, samples=0)
                               + client.memory_usage(HISTORY_LINES_KEY, samples=0))
                assert client.zcard(HISTORY_LINES_KEY) <= 70  # the book stays small
        assert usage[1000] <= usage[200] * 1.15, usage  # flat, not growing
    finally:
        client.close()


def test_a_worker_trims_its_history_by_lines(redis_url: str,
                                             start_worker: StartWorker) -> None:
    """Big writes of one connection: every call is one entry of hundreds of
    lines, and the worker still keeps the history near --history-maxlen lines."""
    _, port = start_worker(redis_url, "--history-maxlen", "1000", "--ack")
    client = redis.Redis.from_url(redis_url)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sender:
            for chunk in range(40):  # 20,000 lines, 500 per write, each acked
                sender.sendall(b"".join(b"%d\n" % (chunk * 500 + k) for k in range(500)))
                assert read_acks(sender, 500) == 500
        lines = held(client)
        assert lines == list(range(20_000 - len(lines), 20_000))
        assert 1000 <= len(lines) <= 2100, len(lines)  # maxlen + 2 steps + a call + a node
        assert client.xlen(STREAM_KEY) < 10  # entries of hundreds of lines each
    finally:
        client.close()
