"""`python -m supervisor reload` on a running system: the config file is
read again and only what changed is applied: tcp_workers scales, a web flag
restarts only web (rolling: nothing refused, clients resume), and a broken
file, or a change that needs a restart, changes nothing and says why."""

from __future__ import annotations

from pathlib import Path

from testkit.procs import wait_until
from tests.support.supervised import Sender, System, Watcher, supervised


def pids(system: System) -> dict[str, int]:
    return {c["name"]: c["pid"] for c in system.status() if c["state"] == "ready"}


def reload(system: System, path: Path, text: str) -> tuple[int, str]:
    path.write_text(text)
    done = system.ctl("reload")
    return done.returncode, done.stdout + done.stderr


def test_reload_scales_restarts_only_web_and_refuses_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "tcpws.toml"
    path.write_text("tcp_workers = 1\n[web]\nmax_clients = 100\n")
    with supervised("--config", str(path)) as system:
        port = system.tcp_ports[0]
        watcher = Watcher(system)
        watcher.start()
        assert watcher.connected.wait(10)
        sender = Sender(port)
        sender.start()
        try:
            wait_until(lambda: len(sender.sent) > 20, 20, what="lines flowing")

            # tcp_workers changed: one more worker per port, web untouched.
            before = pids(system)
            rc, out = reload(system, path, "tcp_workers = 2\n[web]\nmax_clients = 100\n")
            assert rc == 0 and "tcp_workers" in out, out
            wait_until(lambda: system.tcp_counts()[port] == 2, 30, what="two tcp workers")
            now = pids(system)
            assert now["web.1"] == before["web.1"]
            assert now[f"tcp.{port}.1"] == before[f"tcp.{port}.1"]

            # A web flag changed: web is replaced (rolling), the tcp workers are not.
            before = pids(system)
            rc, out = reload(system, path, "tcp_workers = 2\n[web]\nmax_clients = 200\n")
            assert rc == 0 and "web_args" in out and "web" in out, out
            wait_until(lambda: pids(system).get("web.1") not in (None, before["web.1"]), 30,
                       what="web replaced")
            system.proc.wait_for_output(r"web\.1 replaced", 10)
            now = pids(system)
            assert {n: p for n, p in now.items() if n.startswith("tcp.")} == \
                {n: p for n, p in before.items() if n.startswith("tcp.")}
            assert "--max-clients 200" in Path(f"/proc/{now['web.1']}/cmdline").read_bytes() \
                .replace(b"\0", b" ").decode()

            # A broken file: refused with the reason, nothing changes.
            before = pids(system)
            rc, out = reload(system, path, 'tcp_workers = "two"\n')
            assert rc == 1 and "tcp_workers" in out and "nothing changed" in out, out
            rc, out = reload(system, path, "tcp_workers = 2\nstop_timeout = 5\n"
                                           "[web]\nmax_clients = 200\n")
            assert rc == 1 and "stop_timeout" in out and "cannot change" in out, out
            rc, out = reload(system, path, "bogus = 3\n")
            assert rc == 1 and "'bogus'" in out, out
            assert pids(system) == before

            back = len(sender.sent)
            wait_until(lambda: len(sender.sent) > back + 20, 20, what="lines after the reloads")
        finally:
            sender.stop.set()
            sender.join(10)
        assert sender.refused == 0
        wait_until(lambda: set(sender.sent) <= set(watcher.got), 30,
                   what="every line to the resuming WebSocket client")
        watcher.stop.set()
        watcher.join(10)
        assert 1012 in watcher.close_codes  # closed by the replaced web, then resumed
