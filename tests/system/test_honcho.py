"""The Procfile under real honcho, and the `redis`
entry that makes honcho's all-at-once SIGTERM safe.

honcho runs with its own port base (`-p`) from a block of free ports and an
env file of the test's (`-e`) whose REDIS_URL matches that base, so these
tests never collide with a developer's `honcho start` or with each other."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.exceptions
from websockets.sync.client import connect as ws_connect

from tcpws.protocol import LIVE_CHANNEL, decode_live
from testkit.procfs import pid_alive
from testkit.procs import (
    PYTHON,
    ROOT,
    Proc,
    free_port,
    port_free,
    port_open,
    python_module,
    wait_until,
)

NO_SOCKET = {"TCPWS_REDIS_SOCKET": ""}  # the redis entry alone: no socket in the checkout
STARTED = re.compile(r"system\s+\| (\S+) started \(pid=(\d+)\)")
STOPPED = re.compile(r"system\s+\| (\S+) stopped \(rc=(-?\d+)\)")


def finish(proc: Proc, timeout: float = 10.0) -> None:
    """Stop `proc` (SIGTERM, wait, SIGKILL its group) and close its pipe,
    which `Proc.stop` leaves open (a ResourceWarning, an error under
    filterwarnings=error)."""
    proc.stop(timeout=timeout)
    if proc.popen.stdout is not None:
        proc.popen.stdout.close()


def free_port_base(tcp_workers: int) -> int:
    """A base B such that B (redis), B+100 (web) and B+200.. (tcp) are free:
    honcho's rule is +100 per Procfile entry, +1 per instance."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000)
        ports = [base, base + 100, *(base + 200 + i for i in range(tcp_workers))]
        if all(port_free(p) for p in ports):
            return base
    raise RuntimeError("no free port block for honcho")


class HonchoRun:
    """`honcho start` on the repo's Procfile, with its output parsed."""

    def __init__(self, tmp_path: Path, tcp_workers: int, repo_env: bool = False) -> None:
        """`repo_env`: the repo's .env exactly as committed; else an env file
        of the test's, REDIS_URL on the redis entry's TCP port."""
        self.tcp_workers = tcp_workers
        self.base = free_port_base(tcp_workers)
        self.redis_port = self.base
        self.web_port = self.base + 100
        self.tcp_ports = [self.base + 200 + i for i in range(tcp_workers)]
        env_file = tmp_path / "honcho.env"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        root = tmp_path  # honcho's working directory: the redis entry's socket goes there
        if repo_env:
            env_file = ROOT / ".env"
            self.redis_url = f"unix://{tmp_path}/.tcpws/honcho/redis.sock"
        else:  # the repo's .env with a Redis address added
            lines = (ROOT / ".env").read_text().splitlines()
            lines.append(f"REDIS_URL={self.redis_url}")
            env_file.write_text("\n".join(lines) + "\n")
        argv = python_module("honcho", "start", "-f", str(ROOT / "Procfile"), "-d", str(root),
                             "-e", str(env_file), "-p", str(self.base), "--no-colour",
                             "-c", f"tcp_worker={tcp_workers}")
        self.proc = Proc(argv, env={"PYTHON": PYTHON}, cwd=root, name="honcho")

    def wait_ready(self, timeout: float = 30.0) -> None:
        names = ["web.1", *(f"tcp_worker.{i + 1}" for i in range(self.tcp_workers))]
        for name in names:
            self.proc.wait_for_output(rf"{re.escape(name)}\s+\|.*\bready\b", timeout)
        self.proc.wait_for_output(r"redis\.1\s+\|.*redis ready", timeout)

    def pids(self) -> dict[str, int]:
        return {m.group(1): int(m.group(2))
                for m in map(STARTED.search, self.proc.output().splitlines()) if m}

    def exit_codes(self) -> dict[str, int]:
        return {m.group(1): int(m.group(2))
                for m in map(STOPPED.search, self.proc.output().splitlines()) if m}

    def redis_server_pid(self) -> int:
        m = self.proc.wait_for_output(r"redis-server pid (\d+)", 5)
        return int(m.group(1))

    def ours(self, pid: int) -> bool:
        """Guard against pid reuse: the process belongs to this run (its
        environment names our Redis, or it is the redis-server on our port)."""
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return (f"REDIS_URL={self.redis_url}".encode() in environ
                or (b"redis-server" in cmdline and str(self.redis_port).encode() in cmdline))

    def kill_leftovers(self) -> None:
        """Teardown after a failure: honcho's children run in their own
        sessions, so stopping honcho's group does not reach them."""
        found = re.search(r"redis-server pid (\d+)", self.proc.output())
        pids = [*self.pids().values(), *([int(found.group(1))] if found else [])]
        for pid in pids:
            if pid_alive(pid) and self.ours(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def honcho_factory(tmp_path: Path) -> Iterator[list[HonchoRun]]:
    runs: list[HonchoRun] = []
    yield runs
    for run in runs:
        finish(run.proc)
        run.kill_leftovers()


def start_honcho(runs: list[HonchoRun], tmp_path: Path, tcp_workers: int = 3,
                 repo_env: bool = False) -> HonchoRun:
    run = HonchoRun(tmp_path, tcp_workers, repo_env)
    runs.append(run)
    run.wait_ready()
    return run



def stop_with_sigint(run: HonchoRun, timeout: float = 20.0) -> str:
    run.proc.signal(signal.SIGINT)
    run.proc.wait(timeout)
    return run.proc.output()


def assert_clean_stop(run: HonchoRun, output: str) -> None:
    assert "sending SIGKILL" not in output, f"honcho had to SIGKILL something:\n{output}"
    codes = run.exit_codes()
    expected = {"redis.1", "web.1", *(f"tcp_worker.{i + 1}" for i in range(run.tcp_workers))}
    assert set(codes) == expected, output
    assert all(rc == 0 for rc in codes.values()), f"unclean exits {codes}:\n{output}"


def http_get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        body: bytes = resp.read()
        return body


# ---- the redis entry on its own ---------------------------------------------------------


@pytest.mark.parametrize(("args", "env"), [(["--port", "70000"], {}), ([], {"PORT": "abc"}),
                                           (["--grace", "-1"], {})])
def test_redis_entry_bad_config_is_one_line_and_exit_2(args: list[str],
                                                       env: dict[str, str]) -> None:
    proc = Proc(python_module("tcpws.procfile_redis", *args), env=env, name="redis-entry")
    try:
        assert proc.wait(10) == 2
        lines = proc.output().splitlines()
        assert len(lines) == 1 and "error" in lines[0], lines
    finally:
        finish(proc)


def test_redis_entry_waits_for_tcp_workers_then_exits_zero() -> None:
    port = free_port()
    proc = Proc(python_module("tcpws.procfile_redis", "--grace", "20"),
                env={"PORT": str(port), **NO_SOCKET},
                name="redis-entry")
    try:
        proc.wait_for_output(rf"redis ready on 127\.0\.0\.1:{port}")
        worker = redis.Redis(port=port, client_name="tcpws-tcp:test.1")
        other = redis.Redis(port=port, client_name="tcpws-web:test")
        assert worker.ping() and other.ping()
        proc.signal(signal.SIGTERM)
        proc.wait_for_output(r"waiting up to .* for 1 tcp worker")
        # Still serving while the worker is connected: it can publish.
        assert worker.publish(LIVE_CHANNEL, "[]") == 0
        assert proc.popen.poll() is None
        worker.close()  # the worker leaves; web clients do not hold Redis up
        assert proc.wait(10) == 0
        assert "no tcp worker connected" in proc.output()
        other.close()
    finally:
        finish(proc)


def test_redis_entry_grace_bounds_the_wait() -> None:
    port = free_port()
    proc = Proc(python_module("tcpws.procfile_redis", "--grace", "0.5"),
                env={"PORT": str(port), **NO_SOCKET},
                name="redis-entry")
    try:
        proc.wait_for_output(r"redis ready")
        stuck = redis.Redis(port=port, client_name="tcpws-tcp:stuck")
        stuck.ping()
        proc.signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert "grace of 0.5s passed with 1 tcp worker(s) still connected" in proc.output()
        assert not port_open(port)
        stuck.close()
    finally:
        finish(proc)


def test_redis_entry_sigkilled_takes_redis_with_it() -> None:
    port = free_port()
    proc = Proc(python_module("tcpws.procfile_redis"),
                env={"PORT": str(port), **NO_SOCKET}, name="redis-entry")
    server_pid = 0
    try:
        server_pid = int(proc.wait_for_output(r"redis-server pid (\d+)").group(1))
        proc.signal(signal.SIGKILL)
        proc.wait(5)
        wait_until(lambda: not pid_alive(server_pid), 5, what="redis-server to die with its parent")
        assert not port_open(port)
    finally:
        finish(proc)
        if server_pid and pid_alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)


# ---- honcho for real --------------------------------------------------------------------


def test_three_tcp_workers_deliver_to_websocket(honcho_factory: list[HonchoRun],
                                                tmp_path: Path) -> None:
    run = start_honcho(honcho_factory, tmp_path, tcp_workers=3)
    assert http_get(run.web_port, "/readyz")
    expected = {f"via-{p}-{i}": p for p in run.tcp_ports for i in range(5)}
    got: dict[str, int] = {}
    with ws_connect(f"ws://127.0.0.1:{run.web_port}/ws?format=json", open_timeout=5) as ws:
        for port in run.tcp_ports:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall("".join(f"via-{port}-{i}\n" for i in range(5)).encode())
        deadline = time.monotonic() + 15
        while set(got) != set(expected) and time.monotonic() < deadline:
            for item in json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))):
                got[item["data"]] = item["port"]
    assert got == expected
    assert_clean_stop(run, stop_with_sigint(run))


class Sender(threading.Thread):
    """Sends numbered lines to one port until told to stop, then half-closes
    and waits for the worker to close: every line it sent must be published."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.sent: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                n = 0
                while not self.stop.is_set():
                    batch = [f"flow-{self.port}-{n + i}" for i in range(20)]
                    s.sendall(("\n".join(batch) + "\n").encode())
                    self.sent.extend(batch)
                    n += len(batch)
                    self.stop.wait(0.002)  # pacing, not synchronisation
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):
                    pass
        except OSError as exc:
            self.error = exc


class Observer(threading.Thread):
    """A plain Redis subscriber: sees every line published until Redis stops."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, client_name="test-observer")
        self.pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        self.pubsub.subscribe(LIVE_CHANNEL)
        self.pubsub.get_message(timeout=5)  # the subscribe confirmation
        self.lines: list[str] = []

    def run(self) -> None:
        try:
            while True:
                msg = self.pubsub.get_message(timeout=1.0)
                if msg and msg["type"] == "message":
                    for entry in decode_live(msg["data"]):
                        self.lines.extend(entry.lines)
        except redis.exceptions.RedisError:
            return  # Redis stopped: everything published has been seen
        finally:
            self.pubsub.close()
            self.client.close()


def stop_while_flowing(run: HonchoRun, observer: Observer, flowing: int) -> str:
    """SIGINT to honcho while one sender per port is sending; asserts a
    clean stop in which every line sent was published exactly once, and
    returns honcho's output."""
    stop = threading.Event()
    senders = [Sender(port, stop) for port in run.tcp_ports]
    for sender in senders:
        sender.start()
    wait_until(lambda: len(observer.lines) >= flowing, 20, what="lines flowing")
    run.proc.signal(signal.SIGINT)  # while the senders are still sending
    run.proc.wait_for_output(r"SIGINT received", 5)
    stop.set()
    for sender in senders:
        sender.join(15)
    run.proc.wait(20)
    observer.join(10)
    output = run.proc.output()
    assert_clean_stop(run, output)
    assert [s.error for s in senders] == [None] * len(senders)
    sent = [line for s in senders for line in s.sent]
    published = [line for line in observer.lines if line.startswith("flow-")]  # the senders'
    missing = set(sent) - set(published)
    assert not missing, f"{len(missing)} of {len(sent)} lines never published"
    assert len(published) == len(sent), "a line was published twice"
    # tcp_worker logs "N lines could not be published" (and exits 1) when it loses any
    assert "could not be published" not in output
    return output


def test_sigint_while_lines_flow_loses_nothing(honcho_factory: list[HonchoRun],
                                               tmp_path: Path) -> None:
    run = start_honcho(honcho_factory, tmp_path, tcp_workers=3)
    observer = Observer(run.redis_port)
    observer.start()
    stop_while_flowing(run, observer, 3000)


def test_kill_9_of_one_worker_stops_everything(honcho_factory: list[HonchoRun],
                                               tmp_path: Path) -> None:
    run = start_honcho(honcho_factory, tmp_path, tcp_workers=3)
    pids = run.pids()
    pids["redis-server"] = run.redis_server_pid()
    victim = pids["tcp_worker.2"]
    assert b"tcp_worker" in Path(f"/proc/{victim}/cmdline").read_bytes()
    os.kill(victim, signal.SIGKILL)
    run.proc.wait(15)  # honcho's own time-out is 5 s after the first exit
    output = run.proc.output()
    assert "sending SIGKILL" not in output, f"honcho had to SIGKILL the rest:\n{output}"
    codes = run.exit_codes()
    assert codes.pop("tcp_worker.2") == -signal.SIGKILL
    assert all(rc == 0 for rc in codes.values()), f"unclean exits {codes}:\n{output}"
    left = {name: pid for name, pid in pids.items() if pid_alive(pid)}
    assert not left, f"left behind: {left}"
    ports = [run.redis_port, run.web_port, *run.tcp_ports]
    assert not [p for p in ports if port_open(p)]
