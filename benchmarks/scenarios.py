"""One measurement each, run against either system: throughput, latency,
idle memory, recovery after `kill -9`, shutdown time.

Every phase has a fixed count and a time-out; every load-generator process
it starts is stopped before it returns (also on an exception)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.framed import frame
from benchmarks.measure import settled
from benchmarks.systems import Ours, Service, System
from testkit.procfs import cmdline, total_cpu, total_rss_kib
from testkit.procs import wait_until

# 59 characters + "\n" = 60 bytes: not a divisor of the original's 1 KiB reads,
# so its chunks cut lines the way real traffic does.
LINE_BYTES = 59
SENDERS = 3


class LoadProc(Service):
    """A `python -m benchmarks.loadgen` (or other `module`) process, read line by line."""

    def __init__(self, *args: str, module: str = "benchmarks.loadgen") -> None:
        super().__init__("loadgen", [sys.executable, "-m", module, *args], stdin=True)

    def expect(self, prefix: str, timeout: float) -> str:
        """The first output line starting with `prefix`, waiting at most `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"loadgen gave no {prefix!r} in {timeout:.0f}s; "
                                   f"output:\n{self.output()[-2000:]}") from None
            if line is None:
                raise RuntimeError(f"loadgen exited before {prefix!r}:\n{self.output()[-2000:]}")
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def result(self, timeout: float) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.expect("RESULT ", timeout))
        if "error" in data:
            raise RuntimeError(f"loadgen failed: {data['error']}")
        return data

    def poke(self, line: bytes = b"\n") -> None:
        """A line on stdin: next hold step, or stop the clients now."""
        assert self.popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.popen.stdin.write(line)
            self.popen.stdin.flush()


@contextlib.contextmanager
def loadgen(*args: str) -> Iterator[LoadProc]:
    proc = LoadProc(*args)
    try:
        yield proc
    finally:
        proc.kill()


def send_probe(port: int, text: bytes, framing: str = "newline",
               tls: ssl.SSLContext | None = None) -> None:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
        if tls is None:
            s.sendall(frame(framing, text))
            return
        with tls.wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(frame(framing, text))


def prime(system: System, clients: LoadProc, timeout: float = 30.0) -> None:
    """Send probe lines to every TCP port until every client has seen one
    from each port: then the whole path (worker → Redis → web) is live."""
    deadline = time.monotonic() + timeout
    while True:
        for port in system.tcp_ports:
            send_probe(port, b"p%d" % port, system.framings.get(port, "newline"),
                       system.client_tls)
        with contextlib.suppress(TimeoutError):
            clients.expect("PRIMED", 0.2)
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{system.name}: clients never primed")


def client_args(system: System, clients: int, expect: int, timeout: float,
                latency: bool = False, path: str = "/ws") -> list[str]:
    args = ["clients", "--port", str(system.http_port), "--path", path, "--clients", str(clients),
            "--expect", str(expect), "--timeout", str(timeout), "--line-bytes", str(LINE_BYTES),
            "--prime-tags", str(len(system.tcp_ports)), *system.tls_args()]
    return [*args, "--latency"] if latency else args


def sender_args(system: System, lines: int, timeout: float, rate: float = 0.0,
                port: int | None = None) -> list[str]:
    """Senders over every TCP port, or (`port`) only that one, in its framing."""
    ports = system.tcp_ports if port is None else [port]
    framing = system.framings.get(port, "newline") if port is not None else "newline"
    return ["senders", "--ports", ",".join(map(str, ports)), "--lines", str(lines),
            "--senders", str(SENDERS), "--rate", str(rate), "--timeout", str(timeout),
            "--line-bytes", str(LINE_BYTES), "--framing", framing, *system.tls_args()]


def deliver(system: System, clients: int, lines: int, timeout: float,
            rate: float = 0.0, path: str = "/ws", port: int | None = None) -> dict[str, Any]:
    """Send `lines` (flat out, or paced at `rate`; to every TCP port, or only
    to `port`) and count what each of `clients` WebSocket (or,
    `path="/sse"`, SSE) clients got."""
    with loadgen(*client_args(system, clients, lines, timeout, bool(rate), path)) as cl:
        cl.expect("READY", 120)
        prime(system, cl)
        groups = system.cpu_groups()
        cpu0 = {kind: total_cpu(pids) for kind, pids in groups.items()}
        with loadgen(*sender_args(system, lines, timeout, rate, port)) as snd:
            sent = snd.result(timeout + 10)
        got = cl.result(timeout + 15)
        cpu = {kind: total_cpu(pids) - cpu0[kind] for kind, pids in groups.items()}
    t0 = sent["t0"]
    rates = [w / (t - t0) if t > t0 else 0.0 for w, t in zip(got["whole"], got["t_last"],
                                                              strict=True)]
    whole, broken = sum(got["whole"]), sum(got["broken"])
    wall = max(got["t_last"] + [sent["t_end"]]) - t0
    return {
        "clients": clients, "lines": lines, "rate": rate,
        "per_client": sum(rates) / len(rates), "total": whole / wall if wall > 0 else 0.0,
        "lost": lines * clients - whole - broken, "broken": broken,
        "frames": got["frames"], "wall": wall,
        "server_cpu": sum(cpu.values()), "cpu_by_process": cpu,
        "loadgen_cpu": sent["cpu"] + got["cpu"], "latency": got["latencies"],
        "close_codes": got["close_codes"],
    }


def idle_memory(system: System, kind: str, steps: list[int],
                timeout: float = 120.0, path: str = "/ws") -> list[dict[str, float]]:
    """RSS growth of the serving processes per idle WebSocket (`ws`; SSE
    with `path="/sse"`) or TCP (`tcp`) connection, measured from one
    baseline at each step."""
    pids = system.server_pids()
    target = (["--port", str(system.http_port), "--path", path] if kind == "ws"
              else ["--ports", ",".join(map(str, system.tcp_ports))])
    with loadgen("hold", "--kind", kind, *target, "--steps", "20") as warm:
        warm.expect("HOLD", timeout)  # first connections import and allocate lazily
    before = settled(lambda: total_rss_kib(pids))
    out: list[dict[str, float]] = []
    with loadgen("hold", "--kind", kind, *target, "--steps", ",".join(map(str, steps)),
                 "--timeout", str(timeout)) as hold:
        for _step in steps:
            held = int(hold.expect("HOLD", timeout + 5))
            after = settled(lambda: total_rss_kib(pids))
            out.append({"connections": held, "rss_kib": after,
                        "bytes_per_conn": (after - before) * 1024 / max(1, held)})
            hold.poke()
    return out


def worker_on_port(system: Ours, port: int) -> int:
    """The pid of the tcp worker serving `port`, by the `--port N` of its
    command line. Not by its environment: a worker that the supervisor made
    from a pre-imported spare shows the worker's command line (its process
    title) but still the spare's start environment in /proc/PID/environ."""
    for pid in system.tcp_worker_pids():
        words = cmdline(pid).split()
        if any(a == "--port" and b == str(port) for a, b in itertools.pairwise(words)):
            return pid
    raise LookupError(f"no tcp worker found for port {port}")


def recovery(system: Ours, timeout: float = 30.0) -> dict[str, float]:
    """kill -9 the worker of one port, then at once connect to that port and
    send a line: seconds until a WebSocket client receives it."""
    port = system.tcp_ports[0]
    victim = worker_on_port(system, port)
    with loadgen(*client_args(system, 1, 0, timeout + 30)) as cl:
        cl.expect("READY", 60)
        prime(system, cl)
        tag = b"pR%d" % time.monotonic_ns()
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        send_probe(port, tag)
        deadline = t_kill + timeout
        while True:
            text, _, when = cl.expect("PROBE", max(0.1, deadline - time.monotonic())).partition(" ")
            if text == tag.decode():
                delivered = float(when) - t_kill
                break
        cl.poke()
    wait_until(lambda: victim not in system.tcp_worker_pids(), 5, what="old worker gone")
    wait_until(lambda: len(system.tcp_worker_pids()) >= len(system.tcp_ports) * system.tcp_workers,
               30, what="the worker to be replaced")
    replaced = True
    return {"seconds": delivered, "replaced": float(replaced)}


def shutdown_loaded(system: System, lines: int, clients: int = 10,
                    timeout: float = 30.0) -> dict[str, Any]:
    """SIGTERM the top process while senders are flat out; seconds to exit."""
    with loadgen(*client_args(system, clients, lines, timeout + 30)) as cl:
        cl.expect("READY", 60)
        prime(system, cl)
        with loadgen(*sender_args(system, lines, timeout + 30)) as snd:
            start = time.monotonic()
            wait_until(lambda: time.monotonic() - start > 1.0 or not snd.alive(), 5, what="load")
            rss = total_rss_kib(system.server_pids())
            took = system.stop(timeout)
            rc = system.top.popen.returncode
        got = cl.result(timeout)
    return {"seconds": took, "returncode": rc, "rss_kib_loaded": rss,
            "close_codes": sorted(set(got["close_codes"])), "delivered": sum(got["whole"])}

