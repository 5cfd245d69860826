"""Hostile inputs against the whole system. After each one: every
process is still up (no restart), its memory is bounded (RSS from /proc),
and a normal client is unaffected (a line sent now reaches a WebSocket
client that stayed connected throughout).

One supervisor (`--ack`, a 1 MiB per-client queue so that a stalled client
overflows quickly) serves the whole module."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import socket
import struct
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from testkit.procs import wait_until
from tests.support.abuse import (
    RssSampler,
    Watch,
    ack_total,
    assert_unharmed,
    raw_ws_handshake,
    read_close_code,
)
from tests.support.supervised import System, supervised

log = logging.getLogger(__name__)

RSS_BOUND_KIB = 400 * 1024  # generous: a web process idles near 60 MiB
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def system() -> Iterator[System]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    with supervised("--ack", "--web-args", "--client-queue-bytes 1048576") as s:
        yield s


@pytest.fixture(scope="module")
def rss(system: System) -> Iterator[RssSampler]:
    pids = {"supervisor": system.proc.pid, **{c["name"]: c["pid"] for c in system.status()}}
    with RssSampler(pids) as sampler:
        yield sampler
    log.warning("peak RSS under abuse (KiB): %s", sampler.peak)


@pytest.fixture(scope="module")
def watch(system: System) -> Iterator[Watch]:
    with Watch.open(system.http_port) as w:
        yield w


@pytest.fixture(autouse=True)
def stays_healthy(system: System, watch: Watch, rss: RssSampler) -> Iterator[None]:
    """Around each test: same pids before and after, RSS bounded, and the
    normal client keeps receiving."""
    before = {c["name"]: c["pid"] for c in system.status()}
    yield
    assert_unharmed(system, rss, before, RSS_BOUND_KIB)
    watch.canary(system.tcp_ports[0])


def status_sum(system: System, kind: str, field: str) -> int:
    """A counter summed over every process of `kind` in /api/status."""
    url = f"http://127.0.0.1:{system.http_port}/api/status"
    with urllib.request.urlopen(url, timeout=5) as resp:
        workers = json.loads(resp.read())["workers"]
    return sum(int(w.get(field, 0)) for w in workers if w.get("kind") == kind)


async def churn(port: int, total: int, pool: int) -> int:
    """`total` connect/close cycles, `pool` at a time; most end with a reset
    (SO_LINGER 0: no TIME_WAIT left on the host), every 5th sends a line
    and closes normally."""
    done = 0

    async def one_worker(n: int) -> None:
        nonlocal done
        for i in range(n):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            sock = writer.get_extra_info("socket")
            if i % 5 == 0:
                writer.write(b"churn\n")
                await writer.drain()
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            done += 1

    async with asyncio.timeout(50):
        await asyncio.gather(*(one_worker(total // pool) for _ in range(pool)))
    return done


def test_10k_connections_churning(system: System, watch: Watch) -> None:
    assert asyncio.run(churn(system.tcp_ports[0], 10_000, 100)) == 10_000
    watch.canary(system.tcp_ports[0])
    # Every connection was let go: the worker's open count returns to 0.
    wait_until(lambda: status_sum(system, "tcp", "connections") == 0, 15,
               what="tcp worker connections back to 0")


async def slowloris(port: int, senders: int, seconds: int, watch: Watch) -> None:
    """`senders` connections dribbling one byte a second, while the normal
    client's lines flow (a canary each second)."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(senders)]
    try:
        for second in range(seconds):
            for _r, w in conns:
                w.write(b"s")
            await asyncio.to_thread(watch.canary, port, f"during-slowloris-{second}")
            await asyncio.sleep(1)  # pacing: the attack is 1 byte/s
    finally:
        for _r, w in conns:
            w.close()


def test_slowloris_senders(system: System, watch: Watch) -> None:
    asyncio.run(slowloris(system.tcp_ports[0], 50, 4, watch))


def test_1mib_lines_dropped_counted_connection_usable(system: System, watch: Watch) -> None:
    dropped = status_sum(system, "tcp", "dropped_long")
    big = b"A" * (1024 * 1024) + b"\n"
    with socket.create_connection(("127.0.0.1", system.tcp_ports[0]), timeout=20) as s:
        for i in range(8):
            s.sendall(big + f"after-big-{i}\n".encode())
        assert ack_total(s, 16) == 16  # dropped lines are acked as done
        watch.wait_for([f"after-big-{i}" for i in range(8)])
    assert max(len(line) for line in watch.lines) < 65536
    wait_until(lambda: status_sum(system, "tcp", "dropped_long") >= dropped + 8, 10,
               what="dropped_long counted")


def test_invalid_utf8(system: System, watch: Watch) -> None:
    bad = [b"utf8-\xff\xfe-\xc3(-end", b"utf8-\xed\xa0\x80-surrogate", b"utf8-\x80\x00-nul"]
    with socket.create_connection(("127.0.0.1", system.tcp_ports[0]), timeout=10) as s:
        s.sendall(b"".join(line + b"\n" for line in bad))
        assert ack_total(s, 3) == 3
    watch.wait_for([line.decode("utf-8", "replace") for line in bad])


def test_websocket_client_that_never_reads(system: System, watch: Watch) -> None:
    slow_closed = status_sum(system, "web", "slow_closed")
    stalled = raw_ws_handshake(system.http_port, "/ws?format=raw")
    try:
        payload = b"x" * 1000
        lines = [b"flood-%05d-" % i + payload for i in range(12_000)]  # ~12 MiB
        with socket.create_connection(("127.0.0.1", system.tcp_ports[0]), timeout=20) as s:
            # Paced so that a client that reads keeps up: the stalled one never does.
            for i in range(0, len(lines), 500):
                chunk = lines[i:i + 500]
                s.sendall(b"\n".join(chunk) + b"\n")
                watch.wait_for([chunk[-1].decode()], timeout=20)
            assert ack_total(s, len(lines), timeout=20) == len(lines)
        assert sum(1 for line in watch.lines if line.startswith("flood-")) == len(lines)
        wait_until(lambda: status_sum(system, "web", "slow_closed") > slow_closed, 20,
                   what="the stalled client closed as too slow")
        assert read_close_code(stalled, timeout=20) == 1008
    finally:
        stalled.close()


async def thousand_clients(port: int, tcp_port: int, n: int) -> int:
    """`n` clients connect at once; once all are open, one line is sent and
    each must receive it. Returns how many did."""
    url = f"ws://127.0.0.1:{port}/ws?format=raw"
    opened = 0
    all_open = asyncio.Event()

    async def client() -> bool:
        nonlocal opened
        async with aconnect(url, compression=None, open_timeout=30) as ws:
            opened += 1
            if opened == n:
                all_open.set()
            while True:
                frame = await ws.recv()
                if "hello-thousand" in frame:
                    return True

    async with asyncio.timeout(45):
        clients = [asyncio.create_task(client()) for _ in range(n)]
        waiting = asyncio.create_task(all_open.wait())
        await asyncio.wait([waiting, *clients], return_when=asyncio.FIRST_COMPLETED)
        if not all_open.is_set():  # a client failed: raise its error
            waiting.cancel()
            for task in clients:
                if task.done():
                    task.result()
        _r, w = await asyncio.open_connection("127.0.0.1", tcp_port)
        w.write(b"hello-thousand\n")
        await w.drain()
        w.close()
        return sum(await asyncio.gather(*clients))


def test_1000_websocket_clients_at_once(system: System) -> None:
    n = 1000
    assert asyncio.run(thousand_clients(system.http_port, system.tcp_ports[0], n)) == n


BAD_QUERIES = [
    "format=xml", "format=", "port=abc", "port=0", "port=70000", "port=-1",
    "port=" + "9" * 500, "since=abc", "since=1-2-3-4", "since=--", "since=" + "9" * 500,
    "since=%ff%fe", "format=json&since=1-x", "format=%00",
    "since=" + quote("é" * 64),
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_bad_query_strings_close_1008_with_reason(system: System, query: str) -> None:
    with connect(f"ws://127.0.0.1:{system.http_port}/ws?{query}", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1008
    assert info.value.rcvd.reason
