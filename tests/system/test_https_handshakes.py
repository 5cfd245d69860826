"""Failed TLS handshakes on the HTTPS port: plain text, a client that never
finishes its handshake (silent, or stopping inside its ClientHello), and a
client that refuses our certificate are each closed, counted by cause in
the web's /metrics (`tcpws_web_tls_failed_total{cause}`), the slow ones
after the supervisor's --tls-handshake-timeout; a WSS client open all along
keeps getting its lines and new clients get in."""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import time
from pathlib import Path

from websockets.sync.client import connect

from testkit.procs import wait_until
from tests.support.certs import CertFiles, make_certs
from tests.support.supervised import System, send_lines, supervised

TIMEOUT = 1.0  # --tls-handshake-timeout of the test's supervisor


def tls_failed(system: System, certs: CertFiles) -> dict[str, float]:
    conn = http.client.HTTPSConnection("127.0.0.1", system.http_port, timeout=10,
                                       context=certs.client_context())
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^tcpws_web_tls_failed_total\{cause="(\w+)"\} (\S+)$', body, re.MULTILINE)}


def closed_by_server(sock: socket.socket, within: float, start: float) -> float:
    """Seconds from `start` until the server closed `sock` (EOF or reset)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def client_hello_head() -> bytes:
    """The first bytes of a real ClientHello (a memory-BIO client's)."""
    out = ssl.MemoryBIO()
    obj = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), out,
                                                server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()[:20]


def test_failed_handshakes_are_counted_and_closed_others_flow(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    (tmp_path / "other").mkdir()
    other = make_certs(tmp_path / "other")
    with supervised("--http-tls-cert", certs.cert_file, "--http-tls-key", certs.key_file,
                    "--tls-handshake-timeout", str(TIMEOUT)) as system:
        assert set(tls_failed(system, certs).values()) == {0.0}  # every cause, pre-set
        url = f"wss://127.0.0.1:{system.http_port}/ws?format=json"
        with connect(url, ssl=certs.client_context(), open_timeout=10) as ws:
            send_lines(system.tcp_ports[0], ["before"])
            assert [m["data"] for m in json.loads(ws.recv(timeout=20))] == ["before"]

            plain = socket.create_connection(("127.0.0.1", system.http_port), timeout=10)
            plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert closed_by_server(plain, 10, time.monotonic()) < 5
            plain.close()

            opened = time.monotonic()
            silent = socket.create_connection(("127.0.0.1", system.http_port), timeout=10)
            half = socket.create_connection(("127.0.0.1", system.http_port), timeout=10)
            half.sendall(client_hello_head())
            for sock in (silent, half):
                # Closed by the time-out, not at once and not after asyncio's 60 s.
                took = closed_by_server(sock, 20, opened)
                assert TIMEOUT * 0.5 < took < 15, took
                sock.close()

            refusing = socket.create_connection(("127.0.0.1", system.http_port), timeout=10)
            try:
                other.client_context().wrap_socket(refusing, server_hostname="127.0.0.1")
                raise AssertionError("a client trusting another CA got in")
            except ssl.SSLCertVerificationError:
                pass
            finally:
                refusing.close()

            want = {"timeout": 2, "not_tls": 1, "rejected_by_client": 1}
            counts: dict[str, float] = {}

            def counted() -> bool:
                counts.update(tls_failed(system, certs))
                return {k: counts.get(k) for k in want} == want
            wait_until(counted, 15, what=f"the failed handshakes counted: {want}")

            send_lines(system.tcp_ports[0], ["after"])
            assert [m["data"] for m in json.loads(ws.recv(timeout=20))] == ["after"]
        with connect(url, ssl=certs.client_context(), open_timeout=10) as again:
            send_lines(system.tcp_ports[0], ["new client"])
            assert [m["data"] for m in json.loads(again.recv(timeout=20))] == ["new client"]
        assert system.child("web.1")["restarts"] == 0
