"""HTTPS and WSS on --http-port, on the supervisor's socket: a client that
trusts only the test's CA gets lines over wss://; kill -9 of web and a
SIGHUP rolling restart, with a client connecting over and over, refuse
nothing; bad certificate files stop the supervisor before anything
starts, with one line and exit 2. Certificates are made by the test."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import threading
from pathlib import Path

from websockets.sync.client import connect

from testkit.procs import PYTHON, ROOT, wait_until
from tests.support.certs import CertFiles, make_certs
from tests.support.supervised import System, send_lines, supervised


class HttpsHammer(threading.Thread):
    """New HTTPS connections to /healthz, one after the other."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.port, self.context = port, context
        self.ok = self.refused = self.cut = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=15,
                                               context=self.context)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    self.ok += 1
            except ConnectionRefusedError:
                self.refused += 1
            except (OSError, http.client.HTTPException):
                self.cut += 1  # served by the process that was killed mid-request
            finally:
                conn.close()


def wss_line(system: System, certs: CertFiles, line: str) -> None:
    url = f"wss://127.0.0.1:{system.http_port}/ws?format=json"
    with connect(url, ssl=certs.client_context(), open_timeout=10) as ws:
        send_lines(system.tcp_ports[0], [line])
        assert [m["data"] for m in json.loads(ws.recv(timeout=20))] == [line]


def test_wss_survives_kill_9_and_sighup(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with supervised("--http-tls-cert", certs.cert_file, "--http-tls-key", certs.key_file) \
            as system:
        wss_line(system, certs, "over wss")
        # Nothing is served in clear on the TLS port.
        plain = http.client.HTTPConnection("127.0.0.1", system.http_port, timeout=10)
        try:
            plain.request("GET", "/healthz")
            assert plain.getresponse().status != 200
        except (OSError, http.client.HTTPException):
            pass
        finally:
            plain.close()

        hammer = HttpsHammer(system.http_port, certs.client_context())
        hammer.start()
        try:
            wait_until(lambda: hammer.ok > 5, 20, what="HTTPS answers")
            os.kill(system.pid_of("web.1"), signal.SIGKILL)
            wait_until(lambda: system.child("web.1")["restarts"] == 1
                       and system.child("web.1")["state"] == "ready", 30, what="web restart")
            count = hammer.ok
            wait_until(lambda: hammer.ok > count + 5, 20, what="HTTPS after the kill")
            wss_line(system, certs, "after kill -9")

            before = system.pid_of("web.1")
            system.proc.signal(signal.SIGHUP)
            wait_until(lambda: system.child("web.1")["pid"] not in (None, before)
                       and system.child("web.1")["state"] == "ready", 40, what="web replaced")
            count = hammer.ok
            wait_until(lambda: hammer.ok > count + 5, 20, what="HTTPS after SIGHUP")
        finally:
            hammer.stop.set()
            hammer.join(timeout=20)
        assert hammer.refused == 0
        wss_line(system, certs, "after SIGHUP")


def test_bad_certificate_files_exit_2_with_one_line(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    (tmp_path / "other").mkdir()
    other = make_certs(tmp_path / "other")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cases = [
        ([certs.cert_file, str(tmp_path / "missing.key")], "No such file"),
        ([str(junk), certs.key_file], "not a PEM certificate chain"),
        ([certs.cert_file, other.key_file], "does not match"),
    ]
    for (cert, key), text in cases:
        done = subprocess.run(
            [PYTHON, "-m", "supervisor", "--http-port", "1", "--tcp-port", "2",
             "--http-tls-cert", cert, "--http-tls-key", key, "--control-socket",
             str(tmp_path / "ctl.sock")],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 2, done
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and text in lines[0], done.stderr
        assert lines[0].startswith("supervisor: error: --http-tls-cert/--http-tls-key")
