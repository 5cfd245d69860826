"""The device-like phase of `make bench`: many connections, a few lines
each (`benchmarks.devices`), WebSocket clients counting and timing every
line, and the CPU of each server process per line sent.

The sender connections are all open and the clients primed before the
clock starts; CPU is read from the moment the senders start until every
client has every line (or gave up), so idle costs of the open connections
during the phase count too."""

from __future__ import annotations

from typing import Any

from benchmarks.devices import CpuMeter, Fleet, lines_each
from benchmarks.scenarios import client_args, loadgen, prime
from benchmarks.systems import System


def key(connections: int, rate: float) -> str:
    """The results key of one load: `devices_1000x10`."""
    return f"devices_{connections}x{rate:g}"


def deliver_devices(system: System, connections: int, rate: float, seconds: float,
                    clients: int = 10) -> dict[str, Any]:
    """`connections` × `rate` lines/s for `seconds` against `system`,
    `clients` WebSocket clients; lost, latency and CPU per line."""
    expected = connections * lines_each(rate, seconds)
    timeout = seconds + 60
    fleet = Fleet(system.tcp_ports, connections, rate, seconds)
    try:
        fleet.open()
        with loadgen(*client_args(system, clients, expected, timeout, latency=True)) as cl:
            cl.expect("READY", 120)
            prime(system, cl)
            meter = CpuMeter(system.cpu_groups())
            meter.start()
            t0 = fleet.go()
            sent = fleet.wait(timeout)
            got = cl.result(timeout + 15)
            cpu = meter.stop()
    finally:
        fleet.close()
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
