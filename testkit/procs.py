"""Process helpers for the tests and the benchmarks: free ports, a real
redis-server, real child processes.

Every wait has a time-out; every process started here is stopped (SIGTERM,
wait, SIGKILL of its whole group) by its owner's cleanup."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tcpws.redis_server import find_redis_server, redis_argv

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], object], timeout: float, interval: float = 0.05,
               what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether `port` can be bound now (nothing listens on it, nothing holds it)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Proc:
    """A child process with its output collected line by line."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None,
                 cwd: Path | str = ROOT, name: str = "proc") -> None:
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        self.name = name
        self.argv = list(argv)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.popen = subprocess.Popen(
            self.argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with self.popen.stdout:  # closed at EOF: no ResourceWarning (filterwarnings=error)
            for raw in self.popen.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._lock:
                    self.lines.append(line)
                if os.environ.get("TCPWS_TEST_ECHO"):
                    print(f"[{self.name}] {line}", file=sys.stderr)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for_output(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        rx = re.compile(pattern)

        def found() -> re.Match[str] | None:
            with self._lock:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
            if self.popen.poll() is not None:
                self._reader.join(timeout=2)
                with self._lock:
                    tail = "\n".join(self.lines[-40:])
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode} before printing "
                    f"{pattern!r}; output:\n{tail}")
            return None

        try:
            return wait_until(found, timeout, what=f"{self.name} output {pattern!r}")  # type: ignore[return-value]
        except TimeoutError:
            raise AssertionError(
                f"{self.name} did not print {pattern!r} in {timeout}s; output:\n"
                + "\n".join(self.lines[-40:])) from None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        rc = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=2)
        return rc

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL the whole process group."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.popen.poll() is None:
            self.popen.kill()
        rc = self.popen.wait(timeout=5)
        self._reader.join(timeout=2)
        return rc


class RedisServer:
    """A real redis-server on a free loopback port."""

    def __init__(self, port: int | None = None, durable: bool = False) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tcpws-redis-")
        self.durable = durable
        self.proc: Proc | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = redis_argv(find_redis_server(), port=self.port,
                          durable_dir=self.dir if self.durable else None)
        self.proc = Proc(argv, cwd=self.dir, name=f"redis:{self.port}")
        wait_until(lambda: self.ping(), 10, what="redis PING")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=5)


@contextlib.contextmanager
def running(*argv: str, env: dict[str, str] | None = None, name: str = "proc",
            stop_timeout: float = 15.0) -> Iterator[Proc]:
    proc = Proc(argv, env=env, name=name)
    try:
        yield proc
    finally:
        proc.stop(timeout=stop_timeout)


def python_module(module: str, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args]
