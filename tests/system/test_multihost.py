"""Several hosts against one shared Redis, with real network
namespaces as hosts (tests/support/netns.py): redis-server with a password on
host r, `python -m supervisor --host 0.0.0.0 --redis-url redis://:PASS@r`
on hosts a and b. Needs root and iproute2; skips with the reason otherwise.

Namespaces share the machine's hostname, and worker names are
`<hostname>/<child>`; each supervisor runs in its own UTS namespace with its
own hostname (`host-a`, `host-b`), as separate machines would have."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tcpws.redis_server import find_redis_server, redis_argv
from testkit.procs import PYTHON, Proc, wait_until
from tests.support.abuse import ack_total
from tests.support.netns import Hosts, NetnsUnavailable, connect_in, ip, make_hosts

HTTP, TCP, REDIS = 9100, 9101, 6379
SET_HOSTNAME_AND_EXEC = ("import os, socket, sys; socket.sethostname(sys.argv[1]); "
                         "os.execv(sys.executable, [sys.executable, '-m', 'supervisor', "
                         "*sys.argv[2:]])")
pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    try:
        built = make_hosts()
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield built
    finally:
        built.remove()


@dataclass
class NsClient:
    """A `format=json` WebSocket client living in one namespace; a thread
    keeps reading into `items`; `closed` says if (and how) it ended."""

    ws: ClientConnection
    items: list[dict[str, Any]] = field(default_factory=list)
    closed: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                frame = self.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                self.closed = str(exc)
                return
            self.items.extend(json.loads(frame))

    def data(self) -> list[str]:
        return [item["data"] for item in self.items]

    def wait_for(self, lines: list[str], timeout: float = 30) -> None:
        wait_until(lambda: set(lines) <= set(self.data()), timeout, interval=0.1,
                   what=f"{len(lines)} lines, first {lines[0]!r}")


class Clients:
    """Every NsClient of the test, closed at the end."""

    def __init__(self, hosts: Hosts) -> None:
        self.hosts = hosts
        self.open: list[tuple[NsClient, threading.Thread]] = []
        self.stack = contextlib.ExitStack()

    def connect(self, host: str, query: str = "format=json&since=0") -> NsClient:
        sock = connect_in(self.hosts.ns(host), "127.0.0.1", HTTP)
        ws = self.stack.enter_context(connect(f"ws://127.0.0.1:{HTTP}/ws?{query}", sock=sock,
                                              open_timeout=10, close_timeout=2, max_size=None))
        client = NsClient(ws)
        thread = threading.Thread(target=client.run, daemon=True)
        thread.start()
        self.open.append((client, thread))
        return client

    def close_all(self) -> None:
        for client, thread in self.open:
            client.stop.set()
            thread.join(timeout=5)
        self.stack.close()


def http_get(hosts: Hosts, host: str, path: str) -> tuple[int, bytes]:
    sock = connect_in(hosts.ns(host), "127.0.0.1", HTTP, timeout=5)
    conn = http.client.HTTPConnection("127.0.0.1", HTTP, timeout=5)
    conn.sock = sock
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def worker_names(hosts: Hosts, host: str) -> list[str]:
    status, body = http_get(hosts, host, "/api/status")
    assert status == 200, body
    return [w["name"] for w in json.loads(body)["workers"]]


def readyz(hosts: Hosts, host: str) -> int:
    try:
        return http_get(hosts, host, "/readyz")[0]
    except OSError:
        return 0


def send_acked(hosts: Hosts, host: str, lines: list[str], timeout: float = 30) -> int:
    with connect_in(hosts.ns(host), "127.0.0.1", TCP) as s:
        s.sendall("".join(f"{line}\n" for line in lines).encode())
        return ack_total(s, len(lines), timeout=timeout)


def start_redis(hosts: Hosts, password: str, tmp: str) -> Proc:
    argv = redis_argv(find_redis_server(), port=REDIS, bind=hosts.addr("r"), password=password)
    proc = Proc(["ip", "netns", "exec", hosts.ns("r"), *argv], cwd=tmp, name="redis")

    def pong() -> bool:
        try:
            with connect_in(hosts.ns("r"), hosts.addr("r"), REDIS, timeout=1) as s:
                s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
                reply = b""
                while b"\r\n+PONG" not in reply and (chunk := s.recv(64)):
                    reply += chunk
                return b"+PONG" in reply
        except OSError:
            return False

    wait_until(pong, 15, interval=0.2, what="redis on host r")
    return proc


def start_supervisor(hosts: Hosts, host: str, redis_url: str, tmp: Path) -> Proc:
    control = str(tmp / f"{host}.sock")  # a supervisor killed -9 leaves it behind
    argv = ["ip", "netns", "exec", hosts.ns(host), "unshare", "--uts", "--",
            PYTHON, "-c", SET_HOSTNAME_AND_EXEC, f"host-{host}",
            "--host", "0.0.0.0", "--http-port", str(HTTP), "--tcp-port", str(TCP),
            "--redis-url", redis_url, "--control-socket", control, "--ack",
            "--stop-timeout", "6"]
    return Proc(argv, env={"REDIS_URL": ""}, name=f"supervisor-{host}")


def test_two_hosts_share_one_redis(hosts: Hosts, tmp_path: Path) -> None:
    password = secrets.token_hex(16)
    redis_url = f"redis://:{password}@{hosts.addr('r')}:{REDIS}/0"
    redis = start_redis(hosts, password, str(tmp_path))
    a = start_supervisor(hosts, "a", redis_url, tmp_path)
    b = start_supervisor(hosts, "b", redis_url, tmp_path)
    clients = Clients(hosts)
    try:
        a.wait_for_output("tcpws ready", timeout=90)
        b.wait_for_output("tcpws ready", timeout=90)
        on_a, on_b = clients.connect("a"), clients.connect("b")

        # A line sent to A's TCP port reaches a WebSocket client on B.
        first = [f"a2b-{i:03d}" for i in range(50)]
        assert send_acked(hosts, "a", first) == 50
        on_b.wait_for(first)

        # Ids are global: a client resumes on B with an id it got from A.
        on_a.wait_for(first)
        mid = next(item["id"] for item in on_a.items if item["data"] == "a2b-024")
        resumed = clients.connect("b", f"format=json&since={mid}")
        resumed.wait_for(first[25:])
        assert resumed.data()[:25] == first[25:]

        # /api/status (and /metrics) on B show A's workers.
        wait_until(lambda: {"host-a/tcp.9101.1", "host-a/web.1", "host-b/tcp.9101.1"}
                   <= set(worker_names(hosts, "b")), 15, what="A's workers in B's status")
        assert b"host-a/" in http_get(hosts, "b", "/metrics")[1]

        # A's link to Redis cut: back-pressure on A (no acks, /readyz 503), B unaffected.
        hosts.link("a", up=False)
        cut = [f"cut-{i:03d}" for i in range(100)]
        with connect_in(hosts.ns("a"), "127.0.0.1", TCP) as sender:
            sender.sendall("".join(f"{line}\n" for line in cut).encode())
            wait_until(lambda: readyz(hosts, "a") == 503, 40, what="A's /readyz 503")
            assert ack_total(sender, 1, timeout=0.5) == 0  # nothing stored while cut
            during = [f"b-during-cut-{i}" for i in range(10)]
            assert send_acked(hosts, "b", during) == 10
            on_b.wait_for(during)
            # ... then recovery: every line acked, none lost.
            hosts.link("a", up=True)
            assert ack_total(sender, len(cut), timeout=60) == len(cut)
        on_b.wait_for(cut, timeout=30)
        wait_until(lambda: readyz(hosts, "a") == 200, 40, what="A's /readyz 200 again")

        # kill -9 of A's whole supervisor: B keeps serving, no gap for B's clients.
        before = [f"b-before-kill-{i}" for i in range(20)]
        assert send_acked(hosts, "b", before) == 20
        os.kill(a.pid, signal.SIGKILL)
        after = [f"b-after-kill-{i}" for i in range(20)]
        assert send_acked(hosts, "b", after) == 20
        on_b.wait_for(before + after)
        wait_until(lambda: not ip("netns", "pids", hosts.ns("a")).stdout.split(), 15,
                   what="A's children gone after its supervisor's SIGKILL")
        wait_until(lambda: not any(n.startswith("host-a/") for n in worker_names(hosts, "b")),
                   20, what="A's workers gone from B's status")
        more = [f"b-later-{i}" for i in range(20)]
        assert send_acked(hosts, "b", more) == 20
        on_b.wait_for(more)
        assert on_b.closed is None, on_b.closed
        b_lines = on_b.data()
        twice = sorted({line for line in b_lines if b_lines.count(line) > 1})
    finally:
        clients.close_all()
        for proc in (a, b):
            proc.stop(timeout=15)
        redis.stop(timeout=5)
    # Secrets are never written to logs.
    for proc in (a, b):
        assert password not in proc.output(), f"{proc.name} logged the Redis password"
    assert b.popen.returncode == 0, b.output()[-3000:]
    # No line twice at B's client: a batch whose EVALSHA timed out while the
    # link was down is retried with the same seq after reconnecting, and when
    # the first call, retransmitted by TCP once the link is back, is executed
    # too, one of the two stores nothing (exactly-once publish).
    assert not twice, twice[:10]


def test_socket_in_namespace_is_isolated(hosts: Hosts) -> None:
    """The plumbing itself: host a cannot reach 127.0.0.1 ports of the test
    process, and reaches host r's bridge address."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(OSError):
            connect_in(hosts.ns("a"), "127.0.0.1", port, timeout=2).close()
    out = ip("netns", "exec", hosts.ns("a"), "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert hosts.addr("a") in out
