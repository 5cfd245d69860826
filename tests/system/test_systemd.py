"""The supervisor as a systemd service, tested without systemd: the notify
protocol on a datagram socket of the test's own, socket activation through
Debian's `systemd-socket-activate`, and the shipped unit files through
`systemd-analyze verify`."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from testkit.procs import ROOT, wait_until
from tests.support.notify import NotifyListener
from tests.support.supervised import Sender, Watcher, send_lines, supervised
from tests.support.tools import require_tool

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
INSTALL = "install Debian's systemd package: `make systemd-tools` as root"


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path)
    yield listener
    listener.close()


def test_ready_means_a_tcp_line_reaches_a_websocket_client(notify: NotifyListener) -> None:
    with supervised(tcp_ports=2, ready=False, env=notify.env()) as system:
        ready = notify.wait_for("READY", 60)
        # At this very moment, before anything else happens: the whole path works.
        with system.ws("format=json") as ws:
            send_lines(system.tcp_ports[0], ["first-after-ready"])
            send_lines(system.tcp_ports[1], ["second-after-ready"])
            got = set()
            deadline = time.monotonic() + 10
            while len(got) < 2 and time.monotonic() < deadline:
                got.update(m["data"] for m in json.loads(ws.recv(timeout=10)))
        assert got == {"first-after-ready", "second-after-ready"}
        assert ready["READY"] == "1"
        assert ready["STATUS"] == "2 tcp workers, 1 web, redis embedded: ready"
        statuses = [m.get("STATUS", "") for _, m in notify.messages]
        assert any(s.endswith("starting web") for s in statuses), statuses
        assert any(s.endswith("starting tcp") for s in statuses), statuses
        # Nothing said ready before READY=1.
        assert not any("READY" in m for _, m in notify.messages[:-1])
        # A restart shows in STATUS.
        os.kill(system.pid_of(f"tcp.{system.tcp_ports[0]}.1"), signal.SIGKILL)
        notify.wait_for("STATUS", 20,
                        containing="2 tcp workers, 1 web, redis embedded: ready (1 restart)")
        system.proc.signal(signal.SIGTERM)
        stopping = notify.wait_for("STOPPING", 15)
        assert stopping["STOPPING"] == "1"
        extend = notify.wait_for("EXTEND_TIMEOUT_USEC", 15)
        assert int(extend["EXTEND_TIMEOUT_USEC"]) > 0
        assert system.proc.wait(20) == 0


def test_watchdog_pings_at_half_the_period_and_stop_with_the_loop(
        notify: NotifyListener) -> None:
    with supervised(ready=False, env=notify.env(WATCHDOG_USEC="1000000")) as system:
        notify.wait_for("READY", 60)
        pings: list[float] = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            fields = notify.receive(1.5)
            assert fields is not None, "the watchdog pings stopped while the loop runs"
            if "WATCHDOG" in fields:
                pings.append(notify.messages[-1][0])
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert len(pings) >= 4, pings
        assert max(gaps) < 1.0, f"a gap reached the whole watchdog period: {gaps}"
        system.proc.signal(signal.SIGSTOP)
        try:
            notify.drain(0.3)  # one already in flight
            assert notify.receive(2.5) is None, "a ping came while the supervisor was stopped"
        finally:
            system.proc.signal(signal.SIGCONT)
        notify.wait_for("WATCHDOG", 5)


def _listening_inodes(pid: int) -> set[str]:
    return {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")}


def _listen_inode(port: int) -> set[str]:
    """Inodes of the sockets listening on 127.0.0.1:`port` (/proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            found.add(f"socket:[{fields[9]}]")
    return found


def _activator(http: int, ports: Sequence[int]) -> list[str]:
    return [SOCKET_ACTIVATE, "-l", f"127.0.0.1:{http}",
            *(a for p in ports for a in ("-l", f"127.0.0.1:{p}")),
            f"--fdname=web:{':'.join('tcp' for _ in ports)}",
            "-E", f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}", "-E", "REDIS_URL=",
            "-E", "PYTHONUNBUFFERED=1"]


def test_socket_activation_serves_the_given_sockets() -> None:
    require_tool(SOCKET_ACTIVATE, "systemd-socket-activate", INSTALL)
    with supervised(ready=False, launcher=_activator) as system:
        port = system.tcp_ports[0]
        system.proc.wait_for_output(rf"Listening on 127\.0\.0\.1:{port}", 10)
        wait_until(lambda: _listen_inode(port), 5, what="the activator's socket")
        given = {p: _listen_inode(p) for p in (system.http_port, port)}
        sender = Sender(port)  # its first connection makes the activator exec us
        sender.start()
        try:
            system.proc.wait_for_output("tcpws ready", 60)
            assert system.proc.pid == int(system.proc.wait_for_output(
                r"supervisor \| INFO pid (\d+)", 5).group(1)), "the activator exec'ed us"
            watcher = Watcher(system)
            watcher.last_id = "0-0"  # from the start of the history: the first lines too
            watcher.start()
            assert watcher.connected.wait(10)
            worker = system.pid_of(f"tcp.{port}.1")
            # The sockets served are the ones given: the same inodes, nothing bound anew.
            assert {p: _listen_inode(p) for p in given} == given
            assert given[port] <= _listening_inodes(worker)
            assert given[port] | given[system.http_port] <= _listening_inodes(system.proc.pid)
            os.kill(worker, signal.SIGKILL)
            system.wait_restarted(f"tcp.{port}.1", worker)
            back = len(sender.sent)
            wait_until(lambda: len(sender.sent) > back + 50, 20, what="lines after the restart")
        finally:
            sender.stop.set()
            sender.join(10)
        assert sender.refused == 0
        # What the killed worker had read but not published dies with it (no
        # --ack here); the lines before the kill and after the restart all arrive.
        before = set(sender.sent[:10])
        wait_until(lambda: before | set(sender.sent[back:]) <= set(watcher.got), 20,
                   what="the lines over WebSocket")
        watcher.stop.set()
        watcher.join(10)


@pytest.mark.parametrize("extra", ["other", "missing"])
def test_socket_activation_mismatch_is_one_line_and_exit_2(extra: str) -> None:
    require_tool(SOCKET_ACTIVATE, "systemd-socket-activate", INSTALL)
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.listen()
        b.listen()
        http, other = a.getsockname()[1], b.getsockname()[1]
        asked = [str(http), "--tcp-port", str(other + 1)]  # `other` itself is never asked
        env = {**os.environ, "LISTEN_FDS": "2" if extra == "other" else "1",
               "LISTEN_FDNAMES": "web:tcp", "REDIS_URL": ""}
        env.pop("LISTEN_PID", None)
        fds = [a.fileno(), b.fileno()] if extra == "other" else [a.fileno()]
        script = ("import os,sys;"
                  + "".join(f"os.dup2({fd},{3 + i});" for i, fd in enumerate(fds))
                  + "os.environ['LISTEN_PID']=str(os.getpid());"
                  "os.execv(sys.executable,[sys.executable,'-m','supervisor',*sys.argv[1:]])")
        argv = [sys.executable, "-c", script, "--http-port", *asked,
                "--control-socket", f"/tmp/tcpws-act-{os.getpid()}.sock"]
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=30, pass_fds=fds, check=False)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "socket activation" in lines[0], done.stderr
    assert (str(other) if extra == "other" else str(other + 1)) in lines[0]


def test_unit_files_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the shipped units, installed as the doc
    says: the only change is /opt/tcpws -> this checkout (verify insists the
    ExecStart binary exists)."""
    require_tool(ANALYZE, "systemd-analyze", INSTALL)
    unit_dir = ROOT / "contrib" / "systemd"
    service = (unit_dir / "tcpws.service").read_text()
    assert "ExecStart=/opt/tcpws/.venv/bin/python -m supervisor" in service
    (tmp_path / "tcpws.service").write_text(service.replace("/opt/tcpws", str(ROOT)))
    (tmp_path / "tcpws.socket").write_text((unit_dir / "tcpws.socket").read_text())
    done = subprocess.run([ANALYZE, "verify", "--man=no", str(tmp_path / "tcpws.service"),
                           str(tmp_path / "tcpws.socket")], capture_output=True, text=True,
                          timeout=60, check=False)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if re.search(r"tcpws\.(service|socket)", line)]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr
