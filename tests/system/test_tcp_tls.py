"""TLS, mutual TLS, the PROXY protocol and the source allow-list on the TCP
ports, through the supervisor (its sockets, restarts, --ack): good senders
with Python's ssl and `openssl s_client` get their lines stored with the
right `subject` and `peer`; each bad case is closed and counted in /metrics
while a good sender in parallel loses nothing; kill -9 of a TLS worker
refuses nothing. Certificates are made by the test (trustme)."""

from __future__ import annotations

import datetime
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import trustme

from testkit.procs import PYTHON, ROOT, wait_until
from tests.support.certs import CertFiles, make_certs
from tests.support.supervised import supervised
from tests.support.tls_senders import (
    SteadySender,
    closed_by_server,
    open_sender,
    proxy_v1,
    stored,
    tcp_counter,
    wait_counter,
    worker_status,
)
from tests.support.tools import require_tool

OPENSSL = "/usr/bin/openssl"


def client_context(certs: CertFiles, cn: str, ca: trustme.CA | None = None,
                   **validity: datetime.datetime) -> ssl.SSLContext:
    """A client context trusting the test CA, with a certificate for `cn`
    signed by `ca` (default: the test CA)."""
    context = certs.client_context()
    (ca or certs.ca).issue_cert(f"{cn}.example", common_name=cn, **validity) \
        .configure_cert(context)
    return context


def write_client_files(certs: CertFiles, directory: Path, cn: str) -> tuple[str, str]:
    leaf = certs.ca.issue_cert(f"{cn}.example", common_name=cn)
    cert, key = directory / f"{cn}.pem", directory / f"{cn}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return str(cert), str(key)


def test_tls_and_mutual_tls_bad_cases_and_kill_9(tmp_path: Path) -> None:
    require_tool(OPENSSL, "openssl s_client", "apt-get install openssl")
    certs = make_certs(tmp_path)
    with supervised("--tcp-tls-cert", certs.cert_file, "--tcp-tls-key", certs.key_file,
                    "--tcp-tls-client-ca", certs.ca_file, "--tls-handshake-timeout", "1",
                    "--ack") as system:
        port, http = system.tcp_ports[0], system.http_port
        good = SteadySender(port, "good", client_context(certs, "sender-good"), ack=True)
        good.start()
        wait_until(lambda: good.written > 20, 20, what="the good sender going")

        # Open connections per subject, in /api/status.
        held = open_sender(port, client_context(certs, "sender-held"))
        held.sendall(b"held line\n")
        wait_until(lambda: any(w.get("subjects", {}).get("sender-held") == 1
                               for w in worker_status(http)), 15, what="subject counted")

        # openssl s_client with a client certificate.
        cert, key = write_client_files(certs, tmp_path, "sender-openssl")
        out = subprocess.run([OPENSSL, "s_client", "-quiet", "-connect", f"127.0.0.1:{port}",
                              "-CAfile", certs.ca_file, "-cert", cert, "-key", key,
                              "-verify_return_error", "-no_ign_eof"],
                             input=b"from openssl 1\nfrom openssl 2\n", capture_output=True,
                             timeout=30, check=False)
        assert out.returncode == 0, out.stderr.decode()

        # The bad cases, each closed and counted.
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
                plain.sendall(b"plain text on a TLS port\n")
                assert closed_by_server(plain)
        wait_counter(http, "tls_failed_not_tls", 3)

        other_ca = trustme.CA()
        for cn, kwargs, counter in (
                ("intruder", {"ca": other_ca}, "tls_failed_unknown_ca"),
                ("expired", {"not_before": datetime.datetime(2001, 1, 1),
                             "not_after": datetime.datetime(2002, 1, 1)},
                 "tls_failed_cert_expired")):
            context = client_context(certs, cn, **kwargs)  # type: ignore[arg-type]
            try:
                with open_sender(port, context) as bad:
                    bad.sendall(b"must not be stored\n")
                    assert closed_by_server(bad)
            except (ssl.SSLError, OSError):
                pass  # the server's alert may arrive during the client's handshake
            wait_counter(http, counter)

        no_cert = certs.client_context()
        try:
            with open_sender(port, no_cert) as bad:
                bad.sendall(b"must not be stored either\n")
                assert closed_by_server(bad)
        except (ssl.SSLError, OSError):
            pass
        wait_counter(http, "tls_failed_no_cert")

        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            started = time.monotonic()
            assert closed_by_server(silent, timeout=15)
            assert time.monotonic() - started < 10
        wait_counter(http, "tls_failed_timeout")

        # kill -9 of the TLS worker while a sender connects over and over.
        churn = SteadySender(port, "churn", client_context(certs, "sender-churn"),
                             reconnect=True)
        good.stop.set()
        good.join(30)
        held.close()
        churn.start()
        victim = system.pid_of(f"tcp.{port}.1")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: system.child(f"tcp.{port}.1")["pid"] not in (None, victim)
                   and system.child(f"tcp.{port}.1")["state"] == "ready", 30,
                   what="the tcp worker back")
        written = churn.written
        wait_until(lambda: churn.written > written + 50, 30,
                   what="the churning sender writing on to the new worker")
        churn.stop.set()
        churn.join(30)
        with open_sender(port, client_context(certs, "sender-after")) as after:
            after.sendall(b"after kill 9\n")  # the new worker (a spare) speaks mutual TLS

        assert not good.errors, good.errors
        assert good.acked == len(good.sent), (good.acked, len(good.sent))
        assert churn.refused == 0
        envelopes = stored(http, count=len(good.sent) + 3)
        envelopes += stored(http)[len(envelopes):]
        by_data = {e["data"]: e for e in envelopes}
        assert all(line in by_data for line in good.sent), "a good TLS line was lost"
        assert {by_data[line]["subject"] for line in good.sent} == {"sender-good"}
        assert by_data["held line"]["subject"] == "sender-held"
        assert by_data["from openssl 1"]["subject"] == "sender-openssl"
        assert by_data["from openssl 2"]["subject"] == "sender-openssl"
        assert by_data["after kill 9"]["subject"] == "sender-after"
        assert any(d.startswith("churn-") for d in by_data)
        assert not [d for d in by_data if "stored" in d or "plain text" in d]
        assert all(e["peer"].startswith("127.0.0.1:") for e in envelopes)
        output = system.proc.output()
        assert output.count("failed (not_tls)") == 1  # logged once per cause, then counted
        assert "Traceback" not in output and "eof_received" not in output


def test_proxy_protocol_and_allow_list(tmp_path: Path) -> None:
    with supervised("--proxy-protocol", "--tcp-allow", "10.0.0.0/8,2001:db8::/32",
                    "--tls-handshake-timeout", "1") as system:
        port, http = system.tcp_ports[0], system.http_port
        good = SteadySender(port, "proxied", header=proxy_v1("10.9.8.7", 4242, port))
        good.start()
        wait_until(lambda: good.written > 20, 20, what="the good sender going")

        v2 = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24"
              + socket.inet_pton(socket.AF_INET6, "2001:db8::5")
              + socket.inet_pton(socket.AF_INET6, "::1") + (5555).to_bytes(2, "big")
              + port.to_bytes(2, "big"))
        with open_sender(port, header=v2) as s:
            s.sendall(b"over v2\n")
        cases = (
            (b"GET / HTTP/1.0\r\n\r\n", "proxy_errors_not_proxy"),
            (b"PROXY TCP4 300.1.1.1 127.0.0.1 1 2\r\nx\n", "proxy_errors_bad_v1"),
            (b"PROXY TCP4 " + b"1" * 120 + b"\r\n", "proxy_errors_too_long"),
            (b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c", "proxy_errors_bad_v2"),
            (proxy_v1("192.0.2.1", 1, port), "refused_source"),
        )
        for header, counter in cases:
            try:
                with open_sender(port, header=header) as bad:
                    bad.sendall(b"not stored\n")
                    assert closed_by_server(bad)
            except ConnectionResetError:
                pass  # closed at once: the reset may beat our own writes
            wait_counter(http, counter)
        with open_sender(port, header=b"PROXY TCP4 10.0.0.1 ") as cut:
            cut.shutdown(socket.SHUT_WR)
            assert closed_by_server(cut)
        wait_counter(http, "proxy_errors_truncated")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            assert closed_by_server(silent)
        wait_counter(http, "proxy_errors_timeout")

        good.stop.set()
        good.join(30)
        assert not good.errors, good.errors
        envelopes = stored(http, count=len(good.sent) + 1)
        by_data = {e["data"]: e for e in envelopes}
        assert all(line in by_data for line in good.sent)
        assert {by_data[line]["peer"] for line in good.sent} == {"10.9.8.7:4242"}
        assert by_data["over v2"]["peer"] == "[2001:db8::5]:5555"
        assert "not stored" not in by_data
        assert "subject" not in by_data["over v2"]


def test_allow_list_on_the_socket_source_and_tls_on_a_plain_port(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with supervised("--tcp-allow", "127.0.0.2") as system:
        port, http = system.tcp_ports[0], system.http_port
        with open_sender(port, source="127.0.0.2") as ok:
            ok.sendall(b"from 127.0.0.2\n")
        for _ in range(3):  # a TLS client on this plain port: closed, counted, nothing stored
            try:
                with open_sender(port, certs.client_context(), source="127.0.0.2") as tls:
                    tls.sendall(b"over TLS to a plain port\n")
                    assert closed_by_server(tls)
            except (ssl.SSLError, OSError):
                pass
        wait_counter(http, "tls_on_plain", 3)
        try:
            with open_sender(port) as refused:
                refused.sendall(b"from 127.0.0.1\n")
                assert closed_by_server(refused)
        except ConnectionResetError:
            pass  # closed at once: the reset may even beat the connect's return
        wait_counter(http, "refused_source")
        envelopes = stored(http, count=1)
        assert [(e["data"], e["peer"].rsplit(":", 1)[0]) for e in envelopes] \
            == [("from 127.0.0.2", "127.0.0.2")]
        assert tcp_counter(http, "refused_source") == 1


def test_bad_tls_files_exit_2_with_one_line(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    (tmp_path / "other").mkdir()
    other = make_certs(tmp_path / "other")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = (
        ["--tcp-tls-cert", certs.cert_file],
        ["--tcp-tls-cert", str(tmp_path / "missing.pem"), "--tcp-tls-key", certs.key_file],
        ["--tcp-tls-cert", certs.cert_file, "--tcp-tls-key", other.key_file],
        ["--tcp-tls-cert", certs.cert_file, "--tcp-tls-key", certs.key_file,
         "--tcp-tls-client-ca", str(junk)],
        ["--tcp-allow", "10.0.0.0/33"],
    )
    for args in cases:
        for module in ("supervisor", "tcp_worker"):
            done = subprocess.run([PYTHON, "-m", module, *args], cwd=ROOT, capture_output=True,
                                  text=True, timeout=60, check=False)
            assert done.returncode == 2, (module, args, done.stderr)
            assert done.stdout == ""
            assert len(done.stderr.strip().splitlines()) == 1, (module, args, done.stderr)
