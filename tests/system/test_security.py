"""The safe-defaults audit (docs/security.md), one test per item:
loopback by default, control socket 0600, the embedded Redis on a private
Unix socket (a password whenever it listens on TCP), no secrets in logs,
the WebSocket token checked (in constant time)."""

from __future__ import annotations

import inspect
import logging
import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from supervisor.config import from_args
from testkit.procs import PYTHON, ROOT, free_port
from tests.support.supervised import System, supervised
from web import app as web_app
from web import auth as web_auth
from web import redact

SECRET = "s3cret-Redis-pw-5c1b"
TOKEN = "t0ken-WS-9f2e"


def listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket `pid` listens on, from /proc."""
    inodes = _socket_inodes(pid)
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                addr, port = local.split(":")
                found.append((_address(addr, width), int(port, 16)))
    return found


def unix_listening(pid: int) -> list[str]:
    """Paths of the Unix sockets `pid` listens on (/proc/net/unix)."""
    inodes = _socket_inodes(pid)
    paths = []
    for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = listening
        if len(fields) >= 8 and fields[6] in inodes and fields[3] == "00010000":
            paths.append(fields[7])
    return paths


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _address(hex_addr: str, width: int) -> str:
    raw = bytes.fromhex(hex_addr)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def pid_of(system: System, name: str) -> int:
    return system.pid_of(name)


def test_defaults_bind_loopback_only() -> None:
    assert from_args([], {}).host == "127.0.0.1"
    with supervised() as system:
        for name in ("web.1", f"tcp.{system.tcp_ports[0]}.1"):
            socks = listening(pid_of(system, name))
            assert socks, name
            assert all(addr == "127.0.0.1" for addr, _port in socks), (name, socks)
        # The embedded Redis listens on no TCP port at all: a private Unix socket.
        redis_pid = pid_of(system, "redis")
        assert listening(redis_pid) == []
        [sock_path] = unix_listening(redis_pid)
        assert stat.S_IMODE(os.stat(os.path.dirname(sock_path)).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(sock_path).st_mode) & 0o077 == 0
        # The control socket is the owner's only.
        assert stat.S_IMODE(os.stat(system.control).st_mode) == 0o600


def test_redis_listen_needs_a_password() -> None:
    port = free_port()
    proc = subprocess.run(
        [PYTHON, "-m", "supervisor", "--redis-listen", f"127.0.0.1:{port}",
         "--http-port", str(free_port()), "--tcp-port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "TCPWS_REDIS_PASSWORD": ""})
    assert proc.returncode == 2
    assert "password" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(90)
def test_exposed_redis_requires_auth_and_secrets_stay_out_of_logs() -> None:
    port = free_port()
    env = {"TCPWS_REDIS_PASSWORD": SECRET, "TCPWS_WS_TOKEN": TOKEN}
    with supervised("--redis-listen", f"127.0.0.1:{port}", env=env) as system:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(64).startswith(b"-NOAUTH")
        url = f"ws://127.0.0.1:{system.http_port}/ws?format=json"
        for query in ("", "&token=wrong"):
            with connect(url + query, open_timeout=10) as ws:
                with pytest.raises(ConnectionClosed) as info:
                    ws.recv(timeout=10)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        with connect(f"{url}&token={TOKEN}", open_timeout=10) as ws, \
                pytest.raises(TimeoutError):
            ws.recv(timeout=1)  # accepted: an open stream, nothing to say yet
        assert system.ctl("status").returncode == 0
        status = system.ctl("status").stdout
    output = system.proc.output() + status
    assert SECRET not in output
    assert TOKEN not in output


def test_token_compared_in_constant_time() -> None:
    """Timing cannot be asserted in a test; the audit checks the code path:
    the token goes through hmac.compare_digest, never `==`."""
    for check in (web_auth.StreamAuth.check, web_app.metrics_token_ok):
        source = inspect.getsource(check)
        assert "hmac.compare_digest" in source
        assert "_token ==" not in source and "== self._static" not in source


def test_redis_password_not_on_a_command_line() -> None:
    """Any local user can read /proc/<pid>/cmdline (ps aux)."""
    port = free_port()
    with supervised("--redis-listen", f"127.0.0.1:{port}",
                    env={"TCPWS_REDIS_PASSWORD": SECRET}) as system:
        for child in system.status():
            cmdline = Path(f"/proc/{child['pid']}/cmdline").read_bytes()
            assert SECRET.encode() not in cmdline, child["name"]


def test_token_not_logged_at_debug_level() -> None:
    with supervised("--log-level", "debug", env={"TCPWS_WS_TOKEN": TOKEN}) as system:
        url = f"ws://127.0.0.1:{system.http_port}/ws?format=json&token={TOKEN}"
        with connect(url, open_timeout=10) as ws, pytest.raises(TimeoutError):
            ws.recv(timeout=1)
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        with connect(f"ws://127.0.0.1:{system.http_port}/ws", open_timeout=10,
                     additional_headers=bearer) as ws, pytest.raises(TimeoutError):
            ws.recv(timeout=1)
    output = system.proc.output()
    assert TOKEN not in output
    assert "token=***" in output  # the request line was logged, redacted


def test_redactor_masks_query_tokens_bearer_and_arguments() -> None:
    """The filter itself, on records shaped like uvicorn's and websockets'."""
    redactor = redact.TokenRedactor()

    def masked(msg: str, *args: object) -> str:
        record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, args, None)
        assert redactor.filter(record)
        return record.getMessage()

    assert masked('%s - "WebSocket %s" [accepted]', "1.2.3.4:5", "/ws?token=abc&format=json") \
        == '1.2.3.4:5 - "WebSocket /ws?token=***&format=json" [accepted]'
    assert masked("< GET %s HTTP/1.1", "/ws?format=raw&TOKEN=a%20b") \
        == "< GET /ws?format=raw&TOKEN=*** HTTP/1.1"
    assert masked("< %s: %s", "Authorization", "Bearer xyz") == "< Authorization: Bearer ***"
    assert masked("no secret here: %d%%", 5) == "no secret here: 5%"
    assert masked("bad %s %s", "only one") == "bad %s %s"  # mismatched args dropped
    assert redact.redact(f"x {TOKEN} y", TOKEN) == "x *** y"
