"""The TCP abuse runs once more with TLS on (mutual TLS off: the attacks
need no certificate to start a handshake): 10k TLS connections churning
(most cut mid-handshake or right after it, every 5th sends a line), and
slowloris handshakes (a ClientHello dribbled a byte a second) that the
handshake time-out closes. After each: no process restarted, RSS bounded,
and a TLS sender with --ack and a WebSocket client lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.procs import wait_until
from tests.support.abuse import RssSampler, Watch, assert_unharmed
from tests.support.certs import CertFiles, make_certs
from tests.support.supervised import System, supervised
from tests.support.tls_senders import tcp_counter

RSS_BOUND_KIB = 400 * 1024
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(Path(tmp_path_factory.mktemp("certs")))


@pytest.fixture(scope="module")
def system(certs: CertFiles) -> Iterator[System]:
    with supervised("--ack", "--tcp-tls-cert", certs.cert_file, "--tcp-tls-key",
                    certs.key_file, "--tls-handshake-timeout", "2") as s:
        yield s


@pytest.fixture(scope="module")
def watch(system: System) -> Iterator[Watch]:
    with Watch.open(system.http_port) as w:
        yield w


@pytest.fixture(autouse=True)
def stays_healthy(system: System, watch: Watch, certs: CertFiles) -> Iterator[None]:
    pids = {"supervisor": system.proc.pid, **{c["name"]: c["pid"] for c in system.status()}}
    before = {c["name"]: c["pid"] for c in system.status()}
    with RssSampler(pids) as rss:
        yield
    assert_unharmed(system, rss, before, RSS_BOUND_KIB)
    watch.canary(system.tcp_ports[0], "after", certs.client_context())


async def tls_churn(port: int, context: ssl.SSLContext, total: int, pool: int) -> int:
    """`total` connections, `pool` at a time: every 5th does the handshake
    and sends a line, every 5th + 1 completes the handshake and resets, the
    rest reset right after connecting or after half a ClientHello."""
    done = 0

    async def one(n: int) -> None:
        nonlocal done
        for i in range(n):
            if i % 5 in (0, 1):
                _r, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
                if i % 5 == 0:
                    writer.write(b"churn\n")
                    await writer.drain()
            else:
                _r, writer = await asyncio.open_connection("127.0.0.1", port)
                if i % 5 == 2:
                    writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                    await writer.drain()
            if i % 5 != 0:
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
            done += 1

    async with asyncio.timeout(240):  # a bound, not a timing: 2 shared cores
        await asyncio.gather(*(one(total // pool) for _ in range(pool)))
    return done


def test_10k_tls_connections_churning(system: System, watch: Watch, certs: CertFiles) -> None:
    port = system.tcp_ports[0]
    assert asyncio.run(tls_churn(port, certs.client_context(), 10_000, 50)) == 10_000
    watch.canary(port, "after-churn", certs.client_context())
    wait_until(lambda: tcp_counter(system.http_port, "connections") == 0, 20,
               what="tcp worker connections back to 0")
    assert tcp_counter(system.http_port, "tls_failed_closed") > 0


async def slow_handshakes(port: int, senders: int, seconds: int, watch: Watch,
                          context: ssl.SSLContext) -> None:
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(senders)]
    try:
        for second in range(seconds):
            for _r, w in conns:
                if not w.is_closing():
                    w.write(hello[second:second + 1])
            await asyncio.to_thread(watch.canary, port, f"during-slow-{second}", context)
            await asyncio.sleep(1)  # pacing: the attack is 1 byte/s
    finally:
        for _r, w in conns:
            w.close()


def test_slowloris_handshakes(system: System, watch: Watch, certs: CertFiles) -> None:
    before = tcp_counter(system.http_port, "tls_failed_timeout")
    asyncio.run(slow_handshakes(system.tcp_ports[0], 50, 4, watch, certs.client_context()))
    wait_until(lambda: tcp_counter(system.http_port, "tls_failed_timeout") >= before + 50, 20,
               what="the slow handshakes timed out and counted")
