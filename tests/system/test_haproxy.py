"""A real HAProxy (Debian's package) in front of a TCP port that speaks
TLS with client certificates and reads the PROXY protocol: one frontend
with `send-proxy-v2`, one with `send-proxy` (v1). The sender connects to
HAProxy from 127.0.0.5 and does TLS end to end through it; the stored
`peer` is that address and port, not HAProxy's 127.0.0.1, and `subject`
is the sender's certificate. The configuration is docs/security.md's."""

from __future__ import annotations

from pathlib import Path

from testkit.procs import Proc, free_port, port_open, wait_until
from tests.support.certs import make_certs
from tests.support.supervised import supervised
from tests.support.tls_senders import open_sender, stored
from tests.support.tools import require_tool

HAPROXY = "/usr/sbin/haproxy"

CONFIG = """\
global
    maxconn 1000

defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m

frontend senders_v2
    bind 127.0.0.1:{front_v2}
    default_backend tcpws_v2

backend tcpws_v2
    server tcp1 127.0.0.1:{tcp_port} send-proxy-v2

frontend senders_v1
    bind 127.0.0.1:{front_v1}
    default_backend tcpws_v1

backend tcpws_v1
    server tcp1 127.0.0.1:{tcp_port} send-proxy
"""


def test_haproxy_send_proxy_v2_and_v1_in_front_of_tls(tmp_path: Path) -> None:
    require_tool(HAPROXY, "HAProxy", "install Debian's haproxy: `make haproxy` as root")
    certs = make_certs(tmp_path)
    context = certs.client_context()
    certs.ca.issue_cert("sensor.example", common_name="sensor-7").configure_cert(context)
    with supervised("--tcp-tls-cert", certs.cert_file, "--tcp-tls-key", certs.key_file,
                    "--tcp-tls-client-ca", certs.ca_file, "--proxy-protocol") as system:
        front_v2, front_v1 = free_port(), free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(CONFIG.format(front_v2=front_v2, front_v1=front_v1,
                                        tcp_port=system.tcp_ports[0]))
        haproxy = Proc([HAPROXY, "-db", "-f", str(config)], name="haproxy")
        try:
            wait_until(lambda: port_open(front_v2) and port_open(front_v1), 20,
                       what="HAProxy listening")
            sources = {}
            for front, line in ((front_v2, "through send-proxy-v2"),
                                (front_v1, "through send-proxy")):
                with open_sender(front, context, source="127.0.0.5") as sock:
                    sources[line] = f"127.0.0.5:{sock.getsockname()[1]}"
                    sock.sendall(line.encode() + b"\n")
            envelopes = {e["data"]: e for e in stored(system.http_port, count=2)}
        finally:
            haproxy.stop(timeout=10)
        for line, peer in sources.items():
            assert envelopes[line]["peer"] == peer, haproxy.output()
            assert envelopes[line]["subject"] == "sensor-7"
