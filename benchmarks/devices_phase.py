"""The device-like phase of `make bench`: many connections, a few lines
each (`benchmarks.devices`), WebSocket clients counting and timing every
line, and the CPU of each server process per line sent.

The sender connections are all open and the clients primed before the
clock starts; CPU is read from the moment the senders start until every
client has every line (or gave up), so idle costs of the open connections
during the phase count too."""

from __future__ import annotations

import contextlib
from typing import Any

from benchmarks.devices import CpuMeter, Fleet, lines_each
from benchmarks.loadgen import latencies_summary
from benchmarks.scenarios import client_args, loadgen, prime
from benchmarks.systems import System

# The clients are spread over this many processes: one process reading every
# client's frames would queue them itself and measure its own lag.
CLIENT_PROCS = 5


def merge_clients(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One clients result out of several processes' (latencies merged from
    each one's 1,001 rank points, weighted by its count)."""
    points: list[float] = []
    for part in parts:
        lat = part["latencies"]
        if lat.get("n"):
            points.extend(lat["q"] * max(1, round(lat["n"] / 1001)))
    merged = latencies_summary(sorted(points))
    if merged.get("n"):
        merged["n"] = sum(p["latencies"].get("n", 0) for p in parts)
        merged["max"] = max(p["latencies"]["max"] for p in parts if p["latencies"].get("n"))
        del merged["q"]
    return {"whole": [w for p in parts for w in p["whole"]],
            "broken": [b for p in parts for b in p["broken"]],
            "t_last": [t for p in parts for t in p["t_last"]],
            "frames": sum(p["frames"] for p in parts), "cpu": sum(p["cpu"] for p in parts),
            "close_codes": [c for p in parts for c in p["close_codes"]], "latencies": merged}


def key(connections: int, rate: float) -> str:
    """The results key of one load: `devices_1000x10`."""
    return f"devices_{connections}x{rate:g}"


def deliver_devices(system: System, connections: int, rate: float, seconds: float,
                    clients: int = 10) -> dict[str, Any]:
    """`connections` × `rate` lines/s for `seconds` against `system`,
    `clients` WebSocket clients; lost, latency and CPU per line."""
    expected = connections * lines_each(rate, seconds)
    timeout = seconds + 60
    fleet = Fleet(system.tcp_ports, connections, rate, seconds, tls_ca=system.tls_ca)
    shares = [clients // CLIENT_PROCS + (i < clients % CLIENT_PROCS)
              for i in range(min(clients, CLIENT_PROCS))]
    with contextlib.ExitStack() as stack:
        stack.callback(fleet.close)
        fleet.open()
        procs = [stack.enter_context(loadgen(*client_args(system, n, expected, timeout,
                                                          latency=True))) for n in shares]
        for cl in procs:
            cl.expect("READY", 120)
            prime(system, cl)
        meter = CpuMeter(system.cpu_groups())
        meter.start()
        t0 = fleet.go()
        sent = fleet.wait(timeout)
        parts = [cl.result(timeout + 15) for cl in procs]
        cpu = meter.stop()
    got = merge_clients(parts)
    lines = sent["sent"]
    whole, broken = sum(got["whole"]), sum(got["broken"])
    wall = max(got["t_last"] + [sent["t_end"]]) - t0
    return {
        "connections": connections, "rate_each": rate, "seconds": seconds, "clients": clients,
        "lines": lines, "rate": connections * rate,
        "lost": lines * clients - whole - broken, "broken": broken,
        "frames": got["frames"], "wall": wall,
        "server_cpu": cpu["total"], "cpu_by_process": cpu["by_kind"],
        "cpu_by_pid": cpu["by_pid"],
        "us_per_line": {k: v / max(1, lines) * 1e6 for k, v in cpu["by_kind"].items()},
        "us_per_line_total": cpu["total"] / max(1, lines) * 1e6,
        "loadgen_cpu": sent["cpu"] + got["cpu"], "sender_cpu": sent["cpu"],
        "sender_late_max": sent["late_max"], "sender_late_mean": sent["late_mean"],
        "latency": got["latencies"], "close_codes": got["close_codes"],
    }
