"""The two systems under test, started and stopped by the harness.

* `Original`: `python -m benchmarks.original` (the seed's single process).
* `Ours`: `python -m supervisor` with its embedded Redis, or, with
  `standalone=True` (what the variants use, so a shim can be swapped in),
  redis-server + one `tcp_worker` per port + one `web` started directly.

Every process is started in its own session and stopped by `stop()`:
SIGTERM, wait, then SIGKILL of its whole process group; `Service.all` lets
the harness kill whatever is left on Ctrl-C."""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from testkit.procfs import matching
from testkit.procs import free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parent.parent


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


class Service:
    """One process we started, its output drained into a short ring buffer."""

    all: ClassVar[list[Service]] = []

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None,
                 stdin: bool = False) -> None:
        self.name = name
        self.tail: collections.deque[str] = collections.deque(maxlen=200)
        self.lines: queue.Queue[str | None] = queue.Queue()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env=full_env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        Service.all.append(self)

    def _drain(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.tail.append(line)
            self.lines.put(line)
        self.lines.put(None)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> float:
        """SIGTERM, wait up to `timeout`; returns seconds until it exited
        (inf if it had to be killed). Always SIGKILLs the group after."""
        took = float("inf")
        if self.alive():
            start = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
                took = time.monotonic() - start
        else:
            took = 0.0
        self.kill()
        return took

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._reader.join(timeout=2)
        if self in Service.all:
            Service.all.remove(self)

    def output(self) -> str:
        return "\n".join(self.tail)


class System:
    """Common shape: an HTTP port with /ws, TCP ports, and server processes."""

    name = "system"
    # Set (benchmarks.tls_phases): its TCP and HTTP ports speak TLS with a
    # certificate this CA file signed; every client and sender trusts it.
    tls_ca = ""

    def __init__(self, tcp_ports: int = 3) -> None:
        self.http_port = free_port()
        self.tcp_ports = [free_port() for _ in range(tcp_ports)]
        self.framings: dict[int, str] = {}  # a port's --framing, when not newline
        self.services: list[Service] = []

    @property
    def top(self) -> Service:
        return self.services[0]

    def start(self, timeout: float = 60.0) -> None:
        raise NotImplementedError

    @cached_property
    def client_tls(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else None

    def tls_args(self) -> list[str]:
        """The load generator's flags to speak TLS to this system."""
        return ["--tls-ca", self.tls_ca] if self.tls_ca else []

    def server_pids(self) -> list[int]:
        """Processes whose memory and CPU count as the system's."""
        raise NotImplementedError

    def tcp_worker_pids(self) -> list[int]:
        return []

    def cpu_groups(self) -> dict[str, list[int]]:
        """Processes whose CPU time is reported, by kind."""
        return {"server": self.server_pids()}

    def _wait_ready(self, timeout: float, ready_url: str | None) -> None:
        def ready() -> bool:
            if not all(s.alive() for s in self.services):
                raise RuntimeError(f"{self.name} exited during start:\n"
                                   + "\n".join(s.output() for s in self.services)[-3000:])
            if ready_url and not http_ok(ready_url, self.client_tls):
                return False
            return port_open(self.http_port) and all(port_open(p) for p in self.tcp_ports)
        wait_until(ready, timeout, interval=0.1, what=f"{self.name} to be ready")

    def stop(self, timeout: float = 15.0) -> float:
        """Stop everything; returns the top process's shutdown time."""
        took = self.top.stop(timeout) if self.services else 0.0
        for service in reversed(self.services[1:]):
            service.stop(timeout)
        return took


class Original(System):
    name = "original"

    def __init__(self, tcp_ports: int = 3, uvicorn_ws: str = "auto",
                 uvicorn_loop: str = "auto") -> None:
        super().__init__(tcp_ports)
        self.extra = ["--ws", uvicorn_ws, "--loop", uvicorn_loop]

    def start(self, timeout: float = 60.0) -> None:
        argv = [sys.executable, "-m", "benchmarks.original", "--http-port", str(self.http_port),
                "--tcp-port", ",".join(map(str, self.tcp_ports)), *self.extra]
        self.services = [Service(self.name, argv)]
        self._wait_ready(timeout, None)

    def server_pids(self) -> list[int]:
        return [self.top.pid]


class Ours(System):
    name = "ours"
    WEB = ("-m web", "shim web")
    TCP = ("-m tcp_worker", "shim tcp_worker")

    def __init__(self, tcp_ports: int = 3, standalone: bool = False,
                 web_args: str = "", tcp_args: str = "--max-connections 15000",
                 web_shim: str = "", tcp_shim: str = "", tcp_workers: int = 1,
                 supervisor_args: Sequence[str] = ()) -> None:
        super().__init__(tcp_ports)
        self.supervisor_args = list(supervisor_args)
        self.tcp_workers = tcp_workers
        self.standalone = standalone or bool(web_shim or tcp_shim)
        self.shims = {"web": web_shim, "tcp_worker": tcp_shim}
        self.web_args = web_args
        self.tcp_args = tcp_args
        self.control = os.path.join(tempfile.mkdtemp(prefix="tcpws-bench-"), "control.sock")

    def start(self, timeout: float = 60.0) -> None:
        if self.standalone:
            self._start_standalone()
        else:
            argv = [sys.executable, "-m", "supervisor", "--host", "127.0.0.1",
                    "--http-port", str(self.http_port),
                    "--tcp-port", ",".join(map(str, self.tcp_ports)),
                    "--tcp-workers", str(self.tcp_workers), "--web-workers", "1",
                    "--stop-timeout", "10",
                    "--control-socket", self.control, "--log-level", "warning",
                    "--tcp-worker-args", self.tcp_args, *self.supervisor_args]
            if self.web_args:
                argv += ["--web-args", self.web_args]
            self.services = [Service(self.name, argv)]
        scheme = "https" if self.tls_ca else "http"
        self._wait_ready(timeout, f"{scheme}://127.0.0.1:{self.http_port}/readyz")

    def _start_standalone(self) -> None:
        from tcpws.redis_server import find_redis_server, redis_argv
        redis_port = free_port()
        url = f"redis://127.0.0.1:{redis_port}/0"
        redis = Service("redis", redis_argv(find_redis_server(), port=redis_port))
        wait_until(lambda: port_open(redis_port), 10, what="redis")
        web = self._child("web", ["--port", str(self.http_port), "--redis-url", url,
                                  "--log-level", "warning", *self.web_args.split()])
        wait_until(lambda: http_ok(f"http://127.0.0.1:{self.http_port}/readyz"), 30, what="web")
        workers = [self._child("tcp_worker", ["--port", str(p), "--redis-url", url,
                                              *self.tcp_args.split()]) for p in self.tcp_ports]
        # The web process stands first: it is the one that owns /ws clients.
        self.services = [web, *workers, redis]

    def _child(self, module: str, args: list[str]) -> Service:
        """A child run directly, or through `benchmarks.shim` with its options."""
        shim = self.shims[module]
        if not shim:
            return Service(module, [sys.executable, "-m", module, *args])
        return Service(module, [sys.executable, "-m", "benchmarks.shim", module, *args],
                       env={"BENCH_SHIM": shim})

    def _pids(self, needles: tuple[str, ...]) -> list[int]:
        return [pid for s in self.services for pid in matching(s.pid, needles)]

    def server_pids(self) -> list[int]:
        return self._pids(self.WEB + self.TCP)

    def tcp_worker_pids(self) -> list[int]:
        return self._pids(self.TCP)

    def web_pids(self) -> list[int]:
        return self._pids(self.WEB)

    def redis_pids(self) -> list[int]:
        return self._pids(("redis-server",))

    def cpu_groups(self) -> dict[str, list[int]]:
        return {"web": self.web_pids(), "tcp": self.tcp_worker_pids(),
                "redis": self.redis_pids()}
