"""Pre-imported spares under `python -m supervisor`: a spare takes the slot
of a killed web process and of a killed tcp worker while clients hammer the
ports (nothing refused, nothing sent after the kill lost), looks like the
child it became, is replaced by a new spare, is no child in `status` or
/api/status, is renewed by a rolling restart, dies with the supervisor
(SIGTERM and SIGKILL), and `--spares off` restarts fresh processes.

The takeover is checked by pid (the slot's new pid is the spare's); how fast
it is belongs to `python -m benchmarks.recovery`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import urllib.request

from websockets.sync.client import ClientConnection

from testkit.procfs import cmdline, pid_alive
from testkit.procs import PYTHON, ROOT, wait_until
from tests.support.supervised import Sender, System, receive_json, send_lines, supervised

SPARE_STARTED = r"(web|tcp) spare started, pid (\d+)"


def spares(system: System) -> dict[str, list[int]]:
    """Every spare the supervisor logged having started, per kind, in order."""
    found: dict[str, list[int]] = {"web": [], "tcp": []}
    for kind, pid in re.findall(SPARE_STARTED, system.proc.output()):
        found[kind].append(int(pid))
    return found


def waiting_spare(system: System, kind: str, after: int | None = None) -> int:
    """The pid of the newest live spare of `kind` (another than `after`)."""
    def newest() -> int | None:
        pids = [p for p in spares(system)[kind] if p != after and pid_alive(p)]
        return pids[-1] if pids else None
    wait_until(lambda: newest() is not None, 30, what=f"a {kind} spare")
    pid = newest()
    assert pid is not None
    return pid


class Connector(threading.Thread):
    """Opens connections to the HTTP port as fast as it is accepted (a
    GET /healthz each), counting any refusal."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.opened = 0
        self.refused = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    s.settimeout(10)
                    s.recv(100)
                self.opened += 1
            except ConnectionRefusedError:
                self.refused += 1
            except OSError:  # reset by the killed process: not a refusal
                pass
            self.stop.wait(0.005)


def wait_for_data(ws: ClientConnection, want: set[str]) -> None:
    """Receive until every line of `want` came (others arrive meanwhile)."""
    got: set[str] = set()

    def arrived() -> bool:
        got.update(m["data"] for m in receive_json(ws, 1))
        return want <= got
    wait_until(arrived, 20, interval=0, what=f"lines {sorted(want)[:3]}...")


def api_status_names(system: System) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{system.http_port}/api/status",
                                timeout=5) as resp:
        return [w["name"] for w in json.load(resp)["workers"]]


def test_spares_take_over_killed_children_and_nothing_is_refused() -> None:
    with supervised() as system:
        port = system.tcp_ports[0]
        tcp_name = f"tcp.{port}.1"
        tcp_spare = waiting_spare(system, "tcp")
        web_spare = waiting_spare(system, "web")
        assert {c["pid"] for c in system.status()}.isdisjoint({tcp_spare, web_spare})
        sender, connector = Sender(port), Connector(system.http_port)
        sender.start()
        connector.start()
        try:
            with system.ws() as ws:
                wait_until(lambda: len(sender.sent) > 5 and connector.opened > 5, 20,
                           what="connections before the kills")
                os.kill(system.pid_of(tcp_name), signal.SIGKILL)
                wait_until(lambda: system.child(tcp_name)["pid"] == tcp_spare
                           and system.child(tcp_name)["state"] == "ready", 20,
                           what="the tcp spare serving the slot")
                back = len(sender.sent)
                wait_until(lambda: len(sender.sent) > back + 5, 20, what="lines after the kill")
                wait_for_data(ws, set(sender.sent[back:back + 5]))

            os.kill(system.pid_of("web.1"), signal.SIGKILL)
            wait_until(lambda: system.child("web.1")["pid"] == web_spare
                       and system.child("web.1")["state"] == "ready", 20,
                       what="the web spare serving the slot")
            opened = connector.opened
            wait_until(lambda: connector.opened > opened + 5, 20, what="HTTP after the kill")
            with system.ws() as ws:
                send_lines(port, ["after-web-kill"])
                wait_for_data(ws, {"after-web-kill"})
        finally:
            sender.stop.set()
            connector.stop.set()
            sender.join(timeout=20)
            connector.join(timeout=20)
        assert sender.refused == 0
        assert connector.refused == 0
        # It looks like the child it became (ps, pgrep -f, benchmarks' pid lookups).
        assert "-m tcp_worker " in cmdline(tcp_spare) and f"--port {port} " in cmdline(tcp_spare)
        assert "-m web " in cmdline(web_spare) and "tcpws.spare" not in cmdline(web_spare)
        # Each kind has a new spare, not a child; /api/status shows children only.
        new_tcp, new_web = waiting_spare(system, "tcp", tcp_spare), waiting_spare(system, "web",
                                                                                  web_spare)
        assert "-m tcpws.spare tcp" in cmdline(new_tcp)
        assert {c["pid"] for c in system.status()}.isdisjoint({new_tcp, new_web})
        assert sorted(n.rsplit("/", 1)[-1] for n in api_status_names(system)) == sorted(
            {"web.1", tcp_name})
        assert system.child(tcp_name)["restarts"] == 1
        assert system.child("web.1")["restarts"] == 1
        # The new spare takes the next death too.
        os.kill(system.pid_of(tcp_name), signal.SIGKILL)
        wait_until(lambda: system.child(tcp_name)["pid"] == new_tcp
                   and system.child(tcp_name)["state"] == "ready", 20, what="the second spare")
        system.proc.wait_for_output(rf"{re.escape(tcp_name)} started from the tcp spare, "
                                    rf"pid {new_tcp}")
        system.proc.signal(signal.SIGTERM)
        assert system.proc.wait(timeout=20) == 0
        assert not any(pid_alive(p) for pids in spares(system).values() for p in pids)
        # The stop order is unchanged: spares first (they serve nothing), then tcp → web → redis.
        assert system.log_index("stopping tcp") < system.log_index("stopping web") \
            < system.log_index("stopping redis")


def test_spares_die_with_a_killed_supervisor() -> None:
    with supervised() as system:
        pids = [waiting_spare(system, "web"), waiting_spare(system, "tcp"),
                *(c["pid"] for c in system.status())]
        system.proc.signal(signal.SIGKILL)
        system.proc.wait(timeout=5)
        try:
            wait_until(lambda: not any(pid_alive(p) for p in pids), 2.0, interval=0.05,
                       what="every spare and child gone within 2 s")
        except TimeoutError:
            raise AssertionError(f"left: {[cmdline(p) for p in pids if pid_alive(p)]}") from None


def test_a_rolling_restart_renews_the_spares_and_does_not_use_them() -> None:
    with supervised() as system:
        old = {kind: waiting_spare(system, kind) for kind in ("web", "tcp")}
        before = {c["name"]: c["pid"] for c in system.status() if c["name"] != "redis"}
        system.proc.signal(signal.SIGHUP)
        for name, pid in before.items():
            wait_until(lambda n=name, p=pid: system.child(n)["pid"] not in (None, p)
                       and system.child(n)["state"] == "ready", 40, what=f"{name} replaced")
        new = {kind: waiting_spare(system, kind, after=pid) for kind, pid in old.items()}
        wait_until(lambda: not any(pid_alive(p) for p in old.values()), 10,
                   what="the old spares gone")
        assert {c["pid"] for c in system.status()}.isdisjoint(set(old.values()) | set(new.values()))
        assert "started from the" not in system.proc.output()


def test_spares_off_restarts_a_fresh_process() -> None:
    with supervised("--spares", "off") as system:
        name = f"tcp.{system.tcp_ports[0]}.1"
        old = system.pid_of(name)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: system.child(name)["pid"] not in (None, old)
                   and system.child(name)["state"] == "ready", 20, what="restarted")
        out = system.proc.output()
        assert not re.search(SPARE_STARTED, out) and "started from the" not in out
        assert re.search(rf"{re.escape(name)} started, pid {system.child(name)['pid']}", out)


def run_spare(kind: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PYTHON, "-m", "tcpws.spare", kind], input=stdin, cwd=ROOT,
                          capture_output=True, timeout=60, check=False)


def test_a_spare_without_a_role_exits_0_and_refuses_another_kinds_role() -> None:
    assert run_spare("tcp", b"").returncode == 0  # its supervisor went away
    role = json.dumps({"argv": [PYTHON, "-m", "web"], "env": {}, "close_fds": []}).encode()
    wrong = run_spare("tcp", role)
    assert wrong.returncode == 2
    assert b"a tcp spare cannot run 'web'" in wrong.stderr
    bad = run_spare("web", b"{not json")
    assert bad.returncode == 2 and b"bad role" in bad.stderr
    assert run_spare("nope", b"").returncode == 2
