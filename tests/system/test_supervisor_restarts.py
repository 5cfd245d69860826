"""Restarts under `python -m supervisor`: a killed child comes
back, its port keeps its backlog meanwhile, a crash loop gives up by the
rule, a stuck child is SIGKILLed, and a killed supervisor leaves nothing."""

from __future__ import annotations

import os
import re
import signal
import socket
import urllib.error
import urllib.request

from testkit.procfs import pid_alive
from testkit.procs import PYTHON, Proc, free_port, port_open, wait_until
from tests.support.supervised import Sender, receive_json, send_lines, supervised


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_killed_children_are_restarted_and_the_port_keeps_its_backlog() -> None:
    with supervised() as system:
        port = system.tcp_ports[0]
        with system.ws() as ws:
            old = system.pid_of(f"tcp.{port}.1")
            sender = Sender(port)  # a new connection every few ms, throughout
            sender.start()
            try:
                wait_until(lambda: len(sender.sent) > 5, 20, what="connections before kill")
                os.kill(old, signal.SIGKILL)
                wait_until(lambda: not pid_alive(old), 10, what="worker dead")
                # Opened while the worker is down or restarting: waits in the backlog.
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(b"while-down-1\nwhile-down-2\n")
                wait_until(lambda: system.child(f"tcp.{port}.1")["state"] == "ready", 20,
                           what="tcp worker back")
                back = len(sender.sent)
                wait_until(lambda: len(sender.sent) > back + 5, 20, what="connections after")
            finally:
                sender.stop.set()
                sender.join(timeout=20)
            assert sender.refused == 0
            # Lines that the killed worker had read but not yet published die with it
            # (no --ack here); everything sent to the port since it died must arrive.
            want = {"while-down-1", "while-down-2", *sender.sent[back:]}
            got: set[str] = set()

            def arrived() -> bool:
                got.update(m["data"] for m in receive_json(ws, 1))
                return want <= got
            wait_until(arrived, 20, interval=0, what="lines sent after the kill")
        tcp = system.child(f"tcp.{port}.1")
        assert tcp["pid"] != old and tcp["restarts"] == 1
        assert tcp["last_exit"] == "killed by SIGKILL (out of memory?)"
        system.proc.wait_for_output(rf"tcp\.{port}\.1 exited unexpectedly: killed by SIGKILL")

        web = system.pid_of("web.1")
        os.kill(web, signal.SIGKILL)
        # A web process serves its socket a moment before its subscription is live
        # (web's behaviour): connect once it reported ready.
        wait_until(lambda: system.child("web.1")["restarts"] == 1
                   and system.child("web.1")["state"] == "ready", 20, what="web restart")
        with system.ws() as ws:
            send_lines(port, ["after-web-restart"])
            assert receive_json(ws, 1)[0]["data"] == "after-web-restart"

        redis = system.pid_of("redis")
        os.kill(redis, signal.SIGKILL)
        wait_until(lambda: system.child("redis")["restarts"] == 1
                   and system.child("redis")["state"] == "ready", 20, what="redis restart")
        with system.ws() as ws:
            def delivered() -> bool:
                send_lines(port, ["after-redis-restart"])
                try:
                    return any(m["data"] == "after-redis-restart"
                               for m in receive_json(ws, 1, timeout=2))
                except TimeoutError:
                    return False
            wait_until(delivered, 30, interval=0.2, what="lines after redis restart")
        wait_until(lambda: readyz(system.http_port) == 200, 20, what="/readyz 200 again")
        assert system.child("web.1")["restarts"] == 1  # workers were not restarted
        assert system.child(f"tcp.{port}.1")["restarts"] == 1
        system.proc.signal(signal.SIGTERM)
        assert system.proc.wait(timeout=20) == 0


def test_crash_loop_gives_up_after_k_and_names_the_child() -> None:
    with supervised("--tcp-worker-args=--no-such-flag", ready=False) as system:
        rc = system.proc.wait(timeout=60)
        out = system.proc.output()
        name = f"tcp.{system.tcp_ports[0]}.1"
        assert rc == 1
        assert f"{name} failed to become ready 5 times in a row" in out
        assert re.search(rf"exit 1: {re.escape(name)} failed", out)
        tries = re.findall(rf"{re.escape(name)} exited 2: bad configuration before it was "
                           r"ready \((\d) of 5", out)
        assert tries == ["1", "2", "3", "4", "5"]
        delays = [float(d) for d in re.findall(rf"{re.escape(name)} restarts in ([\d.]+) s", out)]
        assert len(delays) == 3 and delays == sorted(delays)  # 1st retry at once, then growing
        assert system.log_index("stopping web") < system.log_index("stopping redis")


def test_a_child_that_ignores_sigterm_is_killed_and_named() -> None:
    # tcp stage 3.5 s; web gets 2.1 s, enough for a clean stop on a busy machine.
    with supervised("--stop-timeout", "7") as system:
        name = f"tcp.{system.tcp_ports[0]}.1"
        os.kill(system.pid_of(name), signal.SIGSTOP)  # deaf to SIGTERM, not to SIGKILL
        system.proc.signal(signal.SIGTERM)
        assert system.proc.wait(timeout=30) == 1
        system.proc.wait_for_output(rf"exit 1: {re.escape(name)} killed after 3\.5 s stop "
                                    "time-out$")
        system.proc.wait_for_output("web.1 exited 0")


def test_kill_9_of_the_supervisor_leaves_no_child_and_frees_ports() -> None:
    with supervised("--tcp-workers", "2") as system:
        pids = [c["pid"] for c in system.status()]
        assert len(pids) == 4 and all(pids)
        system.proc.signal(signal.SIGKILL)
        system.proc.wait(timeout=5)
        wait_until(lambda: not any(pid_alive(p) for p in pids), 2.0, interval=0.05,
                   what="every child gone within 2 s")
        wait_until(lambda: not any(port_open(p)
                                   for p in [system.http_port, *system.tcp_ports]),
                   2.0, what="ports free")


def test_bad_flag_and_busy_port_fail_fast_with_one_line() -> None:
    bad = Proc([PYTHON, "-m", "supervisor", "--tcp-workers", "zero"], name="bad")
    assert bad.wait(timeout=20) == 2
    assert bad.lines == ["supervisor: error: --tcp-workers: invalid value 'zero'"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        http = free_port()
        busy = Proc([PYTHON, "-m", "supervisor", "--http-port", str(http), "--tcp-port",
                     f"{free_port()},{port}", "--control-socket", f"/tmp/tcpws-busy-{http}"],
                    name="busy")
        assert busy.wait(timeout=20) == 2
        assert len(busy.lines) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in busy.lines[0]
        assert "in use" in busy.lines[0]
    nopass = Proc([PYTHON, "-m", "supervisor", "--redis-listen", "127.0.0.1:6390"],
                  env={"TCPWS_REDIS_PASSWORD": ""}, name="nopass")
    assert nopass.wait(timeout=20) == 2
    assert len(nopass.lines) == 1 and "password" in nopass.lines[0]


def test_a_second_sigterm_stops_at_once_still_in_order() -> None:
    with supervised("--stop-timeout", "60") as system:
        name = f"tcp.{system.tcp_ports[0]}.1"
        os.kill(system.pid_of(name), signal.SIGSTOP)
        system.proc.signal(signal.SIGTERM)
        system.proc.wait_for_output(r"stopping tcp: .*time-out 30\.0 s")
        system.proc.signal(signal.SIGTERM)
        assert system.proc.wait(timeout=20) == 1  # long before the 30 s stage time-out
        system.proc.wait_for_output(rf"{re.escape(name)} killed by a fast stop")
        assert system.log_index("stopping web") < system.log_index("stopping redis")


def test_sigterm_during_start_up_stops_what_started() -> None:
    with supervised(ready=False) as system:
        system.proc.wait_for_output(r"web\.1 started, pid")
        system.proc.signal(signal.SIGTERM)
        assert system.proc.wait(timeout=20) == 0
        out = system.proc.output()
        assert "stop requested during start-up" in out
        assert system.log_index("stopping web") < system.log_index("stopping redis")
