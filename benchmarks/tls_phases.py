"""TLS next to plain in `make bench` (phase `tls`): the same loads against
two of our systems side by side, one plain and one with TLS on both sides
(`--tcp-tls-cert/--tcp-tls-key`: senders speak TLS; `--http-tls-cert/
--http-tls-key`: clients read over wss://), and the CPU of every server
process per line, with and without TLS.

* flat out, 1 client (the profile's first throughput size, at most
  `MAX_FLAT_LINES`), run twice per system, interleaved (plain, TLS, plain,
  TLS) so the machine's noise hits both alike; the lower CPU per line of the two counts;
* device-like, the profile's first device load (1,000 connections × 10
  lines/s), at most `MAX_DEVICE_SECONDS`.

The certificates are made at run time with trustme (`testkit.certs`) in a
temporary directory that is removed at the end. Goal: TLS adds ≤ 30 % CPU
per line flat out, all server processes together."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks import devices_phase, scenarios
from benchmarks.systems import Ours, System
from testkit.certs import make_certs

GOAL_EXTRA = 0.30
MAX_DEVICE_SECONDS = 5.0
MAX_FLAT_LINES = 1_000_000  # 1-2 s at ~600k lines/s: the phase stays short
FLAT_ROUNDS = 2
KINDS = ("tcp", "web", "redis")


def tls_system(directory: Path, web_args: str = "") -> Ours:
    """Our system with TLS on every TCP port and on the web port."""
    certs = make_certs(directory)
    system = Ours(web_args=web_args, supervisor_args=[
        "--tcp-tls-cert", certs.cert_file, "--tcp-tls-key", certs.key_file,
        "--http-tls-cert", certs.cert_file, "--http-tls-key", certs.key_file])
    system.tls_ca = certs.ca_file
    return system


def per_line(r: dict[str, Any]) -> dict[str, float]:
    """CPU µs per line sent, by process kind and `total`."""
    cpu = r["cpu_by_process"]
    lines = max(1, r["lines"])
    out = {k: cpu.get(k, 0.0) / lines * 1e6 for k in KINDS}
    out["total"] = sum(out.values())
    return out


def _flat(system: System, lines: int, timeout: float) -> dict[str, Any]:
    r = scenarios.deliver(system, 1, lines, timeout)
    r["us_per_line"] = per_line(r)
    return r


def _devices(system: System, connections: int, rate: float, seconds: float,
             clients: int) -> dict[str, Any]:
    r = devices_phase.deliver_devices(system, connections, rate, seconds, clients)
    r["us_per_line"] = per_line(r)
    return r


def run(sizes: Any, progress: Any, web_args: str = "") -> dict[str, Any]:
    """{"plain": {phase: result}, "tls": {phase: result}}."""
    out: dict[str, Any] = {"plain": {}, "tls": {}}
    clients, lines = sizes.throughput[0]
    lines = min(lines, MAX_FLAT_LINES)
    assert clients == 1, "the profile's first throughput size is the 1-client one"
    connections, rate = sizes.devices[0]
    seconds = min(sizes.device_seconds, MAX_DEVICE_SECONDS)
    with tempfile.TemporaryDirectory(prefix="tcpws-bench-tls-") as tmp:
        systems = {"plain": Ours(web_args=web_args), "tls": tls_system(Path(tmp), web_args)}
        try:
            for system in systems.values():
                system.start()
            for round_ in range(FLAT_ROUNDS):
                for name, system in systems.items():
                    r = _flat(system, lines, sizes.phase_timeout)
                    best = out[name].get("throughput_1")
                    if best is None or r["us_per_line"]["total"] < best["us_per_line"]["total"]:
                        out[name]["throughput_1"] = r
                    progress(f"tls phase, {name}: flat out, 1 client, round {round_ + 1}: "
                             f"{_cpu_text(r)}, {r['per_client']:,.0f} lines/s, lost {r['lost']}")
            key = devices_phase.key(connections, rate)
            for name, system in systems.items():
                r = _devices(system, connections, rate, seconds, sizes.device_clients)
                out[name][key] = r
                progress(f"tls phase, {name}: {connections:,} connections × {rate:g} lines/s "
                         f"for {seconds:g} s: {_cpu_text(r)}, lost {r['lost']}")
        finally:
            for system in systems.values():
                system.stop()
    return out


def _cpu_text(r: dict[str, Any]) -> str:
    us = r["us_per_line"]
    return (f"{us['total']:.2f} µs CPU per line ("
            + ", ".join(f"{k} {us[k]:.2f}" for k in KINDS) + ")")


def attempt_run(sizes: Any, progress: Any, web_args: str = "") -> dict[str, Any]:
    """`run`, a failure recorded rather than fatal (as the other phases)."""
    try:
        return run(sizes, progress, web_args)
    except (TimeoutError, RuntimeError, LookupError, OSError) as exc:
        progress(f"tls phase: FAILED: {exc}".splitlines()[0])
        return {"plain": {}, "tls": {}, "error": str(exc)[:2000]}


def _label(key: str) -> str:
    if key == "throughput_1":
        return "flat out, 1 client"
    conns, _, rate = key.split("_")[1].partition("x")
    return f"device-like {int(conns):,} conn × {rate} lines/s"


def goal(results: dict[str, Any] | None) -> tuple[str, str, bool | None] | None:
    """(goal, measured, met?) of TLS's extra CPU per line flat out; None if not run."""
    if not results or "throughput_1" not in results.get("plain", {}):
        return None
    name = f"TLS adds ≤ {GOAL_EXTRA:.0%} CPU per line flat out (all server processes)"
    plain = results["plain"]["throughput_1"].get("us_per_line", {}).get("total")
    tls = results.get("tls", {}).get("throughput_1", {}).get("us_per_line", {}).get("total")
    if not plain or tls is None:
        return name, "not measured", None
    extra = tls / plain - 1
    return name, f"{extra:+.0%} ({tls:.2f} vs {plain:.2f} µs)", extra <= GOAL_EXTRA


def markdown(results: dict[str, Any] | None) -> str:
    """The TLS section of summary.md: CPU µs per line by process, plain vs
    TLS, and the ratio."""
    if not results:
        return ""
    rows = ["", "## TLS next to plain (ours)", "",
            "TCP senders over TLS, clients over wss://, against the same system plain; "
            "CPU µs per line sent.", "",
            "| phase | process | plain | TLS | TLS / plain |", "|---|---|---:|---:|---|"]
    for key in results.get("plain", {}):
        plain, tls = results["plain"][key], results.get("tls", {}).get(key)
        if not tls:
            continue
        for kind in (*KINDS, "total"):
            p, t = plain["us_per_line"][kind], tls["us_per_line"][kind]
            ratio = f"{t / p:.2f}×" if p else "n/a"
            rows.append(f"| {_label(key)} | {'all' if kind == 'total' else kind} | {p:.2f} | "
                        f"{t:.2f} | {ratio} |")
        rows.append(f"| {_label(key)} | lost (plain / TLS) | {plain['lost']} | {tls['lost']} | |")
        if key != "throughput_1":
            lat = [r["latency"] for r in (plain, tls)]
            if all(q.get("n") for q in lat):
                p50_99 = [f"{q['p50'] * 1e3:.1f} / {q['p99'] * 1e3:.1f}" for q in lat]
                rows.append(f"| {_label(key)} | p50 / p99, ms | {p50_99[0]} | {p50_99[1]} | |")
    g = goal(results)
    if g is not None:
        met = "" if g[2] is None else ", met" if g[2] else ", NOT met"
        rows += ["", f"Goal: {g[0]}: {g[1]}{met}."]
    if "error" in results:
        rows += ["", f"TLS phase failed: {results['error'].splitlines()[0]}"]
    return "\n".join(rows) + "\n"
