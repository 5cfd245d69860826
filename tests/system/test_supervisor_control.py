"""Scaling and the control CLI: SIGTTIN/SIGTTOU and `scale` change
the tcp workers per port while lines keep flowing; `status`, `restart` and
`stop` work from another process over a 0600 Unix socket."""

from __future__ import annotations

import os
import signal
import stat
import subprocess

from testkit.procs import PYTHON, wait_until
from tests.support.supervised import System, receive_json, send_lines, supervised


def flowing(system: System, tag: str) -> None:
    """Lines sent to every port now arrive."""
    with system.ws() as ws:
        lines = [f"{tag}-{port}-{i}" for port in system.tcp_ports for i in range(3)]
        for port in system.tcp_ports:
            send_lines(port, [line for line in lines if f"-{port}-" in line])
        assert sorted(m["data"] for m in receive_json(ws, len(lines))) == sorted(lines)


def workers_per_port(system: System, n: int) -> None:
    wait_until(lambda: system.tcp_counts() == dict.fromkeys(system.tcp_ports, n)
               and len([c for c in system.status() if c["name"].startswith("tcp.")])
               == n * len(system.tcp_ports), 30, what=f"{n} tcp workers per port")


def test_scaling_signals_and_control_commands() -> None:
    with supervised(tcp_ports=2) as system:
        assert stat.S_IMODE(os.stat(system.control).st_mode) == 0o600
        workers_per_port(system, 1)
        system.proc.signal(signal.SIGTTIN)
        workers_per_port(system, 2)
        system.proc.signal(signal.SIGTTIN)
        workers_per_port(system, 3)
        flowing(system, "three")
        port = system.tcp_ports[0]
        newest = system.pid_of(f"tcp.{port}.3")
        system.proc.signal(signal.SIGTTOU)
        workers_per_port(system, 2)
        assert {c["name"] for c in system.status()} >= {f"tcp.{port}.1", f"tcp.{port}.2"}
        system.proc.wait_for_output(rf"tcp\.{port}\.3 removed: exited 0")
        assert newest not in [c["pid"] for c in system.status()]
        flowing(system, "two")

        table = system.ctl("status")
        assert table.returncode == 0, table.stderr
        header, *rows = table.stdout.splitlines()
        assert header.split()[:5] == ["NAME", "PID", "STATE", "UPTIME", "RESTARTS"]
        assert [r.split()[0] for r in rows][:2] == ["redis", "web.1"]
        assert all(r.split()[2] == "ready" for r in rows)

        assert system.ctl("scale", "tcp", "1").returncode == 0
        workers_per_port(system, 1)
        for _ in range(3):  # never below one
            system.proc.signal(signal.SIGTTOU)
        assert system.ctl("scale", "tcp", "0").returncode == 1
        workers_per_port(system, 1)
        flowing(system, "one")

        web = system.pid_of("web.1")
        done = system.ctl("restart", "web.1")
        assert done.returncode == 0 and "restarting web.1" in done.stdout
        wait_until(lambda: system.child("web.1")["pid"] not in (None, web)
                   and system.child("web.1")["state"] == "ready", 30, what="web.1 replaced")
        flowing(system, "restarted")
        unknown = system.ctl("restart", "nope.1")
        assert unknown.returncode == 1 and "no worker named 'nope.1'" in unknown.stderr

        second = subprocess.run(
            [PYTHON, "-m", "supervisor", "--http-port", str(system.http_port), "--tcp-port",
             str(system.tcp_ports[0]), "--control-socket", system.control],
            capture_output=True, text=True, timeout=20, check=False)
        assert second.returncode == 2
        assert second.stderr.splitlines() == [
            f"supervisor: error: another supervisor is running (control socket "
            f"{system.control} answers)"]

        stop = system.ctl("stop")
        assert stop.returncode == 0
        assert system.proc.wait(timeout=20) == 0
        gone = system.ctl("status")
        assert gone.returncode == 1
        assert gone.stderr.startswith("supervisor: error: no supervisor is running")
        assert not os.path.exists(system.control)
