"""`python -m benchmarks [--quick] [--phases P,..] [--seconds S] [--out DIR]`
(`make bench`): our system against the original single-process design,
side by side in one run.

Both systems run at the same time on their own free loopback ports, and
each phase runs against one then the other, so that the machine's noise
(2 cores shared with others) hits both alike. The same load generator
(`benchmarks.loadgen`, separate processes) drives both. Results go to
DIR/results.json, DIR/summary.md and DIR/bench.png; one line of progress is
printed per step. The device-like phases (`benchmarks.devices_phase`):
1,000 connections × 10 lines/s and 10,000 × 1 line/s, each line its own
write, 10 clients, `--seconds` each. TLS next to plain: `benchmarks.tls_phases`. Every
process is stopped at the end, also on Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import devices_phase, framings_phase, report, scenarios, sse, tls_phases
from benchmarks.measure import raise_nofile
from benchmarks.systems import ROOT, Original, Ours, Service, System


@dataclass(frozen=True)
class Sizes:
    """How much each phase does: fixed counts, so runs compare."""

    throughput: tuple[tuple[int, int], ...]  # (clients, lines sent)
    rates: tuple[int, ...]                    # lines/s for the latency runs
    latency_seconds: float
    latency_clients: int
    memory_steps: tuple[int, ...]
    loaded_shutdown_lines: int                # 0: skip the loaded shutdown
    phase_timeout: float
    devices: tuple[tuple[int, float], ...]    # (connections, lines/s each)
    device_seconds: float
    device_clients: int = 10
    framing_lines: int = 1_000_000            # flat out per framing method and round
    framing_rounds: int = 3
    parse_lines: int = 200_000                # --parse syslog cost, tcp worker alone


PROFILES = {
    "full": Sizes(((1, 3_000_000), (10, 1_000_000), (100, 100_000)), (1_000, 10_000), 10.0,
                  10, (1_000, 10_000), 3_000_000, 120.0, ((1_000, 10.0), (10_000, 1.0)), 10.0),
    "quick": Sizes(((1, 1_000_000), (10, 300_000), (100, 30_000)), (1_000, 10_000), 3.0, 10,
                   (1_000,), 1_000_000, 60.0, ((1_000, 10.0), (10_000, 1.0)), 3.0,
                  framing_lines=300_000, parse_lines=100_000),
    "smoke": Sizes(((1, 3_000), (10, 2_000), (100, 300)), (1_000,), 1.0, 2, (100,), 0, 30.0,
                   ((100, 5.0),), 1.0, 2, framing_lines=3_000, framing_rounds=1,
                   parse_lines=2_000),
}
# The phases, in the order they run; `--phases` picks some.
PHASES = ("throughput", "latency", "devices", "recovery", "memory", "shutdown", "sse",
          "framings", "tls")


class Progress:
    """One line per step, with the time since the run started."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.start:7.1f}s] {text}", flush=True)


def attempt(progress: Progress, what: str, fn: Callable[[], Any]) -> Any:
    """Run one phase; a failed phase is recorded, not fatal to the run."""
    try:
        return fn()
    except (TimeoutError, RuntimeError, LookupError, OSError) as exc:
        progress(f"{what}: FAILED: {exc}".splitlines()[0])
        return {"error": str(exc)[:2000]}


def _tp_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return "failed"
    return (f"{r['per_client']:,.0f} lines/s per client, lost {r['lost']}, broken {r['broken']},"
            f" load generator CPU {r['loadgen_cpu']:.1f}s in {r['wall']:.1f}s")


def _lat_line(r: dict[str, Any]) -> str:
    lat = r.get("latency", {})
    if "error" in r or not lat.get("n"):
        return "failed"
    return (f"p50 {lat['p50'] * 1e3:.2f} ms, p99 {lat['p99'] * 1e3:.2f} ms, "
            f"max {lat['max'] * 1e3:.2f} ms, lost {r['lost']}")


def _dev_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return "failed"
    per = ", ".join(f"{k} {v:.1f}" for k, v in r["us_per_line"].items())
    return (f"{r['us_per_line_total']:.1f} µs CPU per line ({per}), {_lat_line(r)}, "
            f"sender late ≤ {r['sender_late_max'] * 1e3:.1f} ms")


def run(sizes: Sizes, progress: Progress, web_args: str = "",
        phases: tuple[str, ...] = PHASES) -> dict[str, Any]:
    results: dict[str, Any] = {"original": {}, "ours": {}}
    systems: list[System] = [Original(), Ours(web_args=web_args)]
    for system in systems:
        system.start()
        progress(f"{system.name}: started (http {system.http_port}, tcp {system.tcp_ports})")
    for clients, lines in sizes.throughput if "throughput" in phases else ():
        for system in systems:
            r = attempt(progress, f"{system.name} throughput", partial(
                scenarios.deliver, system, clients, lines, sizes.phase_timeout))
            results[system.name][f"throughput_{clients}"] = r
            progress(f"{system.name}: flat out, {clients} client(s), {lines:,} lines: "
                     f"{_tp_line(r)}")
    for rate in sizes.rates if "latency" in phases else ():
        lines = int(rate * sizes.latency_seconds)
        for system in systems:
            r = attempt(progress, f"{system.name} latency", partial(
                scenarios.deliver, system, sizes.latency_clients, lines, sizes.phase_timeout, rate))
            results[system.name][f"latency_{rate}"] = r
            progress(f"{system.name}: {rate:,} lines/s, {sizes.latency_clients} clients: "
                     f"{_lat_line(r)}")
    for connections, each in sizes.devices if "devices" in phases else ():
        for system in systems:
            r = attempt(progress, f"{system.name} devices", partial(
                devices_phase.deliver_devices, system, connections, each,
                sizes.device_seconds, sizes.device_clients))
            results[system.name][devices_phase.key(connections, each)] = r
            progress(f"{system.name}: {connections:,} connections × {each:g} lines/s, "
                     f"{sizes.device_clients} clients: {_dev_line(r)}")
    ours = systems[1]
    assert isinstance(ours, Ours)
    if "recovery" in phases:
        r = attempt(progress, "ours recovery", lambda: scenarios.recovery(ours))
        results["ours"]["recovery"] = r
        results["original"]["recovery"] = {"seconds": None, "note": "no recovery: the one "
                                           "process is the TCP server; kill -9 takes everything "
                                           "down"}
        progress(f"ours: kill -9 of a tcp worker -> delivering again in "
                 f"{r.get('seconds', float('nan')):.3f} s")
    for system in systems:
        took = system.stop()
        if "shutdown" in phases:
            results[system.name]["shutdown_idle"] = {"seconds": took,
                                                     "returncode": system.top.popen.returncode}
        progress(f"{system.name}: idle shutdown took {took:.2f} s")
    for kind in ("ws", "tcp") if "memory" in phases else ():
        # Fresh processes: memory freed by earlier phases would be reused
        # by the new connections and hide their cost.
        fresh_pair: list[System] = [Original(), Ours(web_args=web_args)]
        for system in fresh_pair:
            system.start()
            r = attempt(progress, f"{system.name} memory", partial(
                scenarios.idle_memory, system, kind, list(sizes.memory_steps)))
            system.stop()
            results[system.name][f"memory_{kind}"] = r
            text = ", ".join(f"{m['bytes_per_conn'] / 1000:.1f} KB each at {m['connections']:,}"
                             for m in r) if isinstance(r, list) else "failed"
            progress(f"{system.name}: idle {kind} connections: {text}")
    if "sse" in phases:
        results["sse"] = sse.attempt_run(sizes, progress, web_args)
    if "framings" in phases:
        results["ours"]["framings"] = attempt(progress, "ours framings", partial(
            framings_phase.run, sizes.framing_lines, sizes.parse_lines, sizes.framing_rounds,
            sizes.phase_timeout, progress))
    if "tls" in phases:  # TLS next to plain, on fresh systems (benchmarks.tls_phases)
        results["tls"] = tls_phases.attempt_run(sizes, progress, web_args)
    if sizes.loaded_shutdown_lines and "shutdown" in phases:
        for fresh in (Original(), Ours(web_args=web_args)):
            fresh.start()
            r = attempt(progress, f"{fresh.name} loaded shutdown", partial(
                scenarios.shutdown_loaded, fresh, sizes.loaded_shutdown_lines))
            fresh.stop()
            results[fresh.name]["shutdown_loaded"] = r
            progress(f"{fresh.name}: shutdown under load took {r.get('seconds', float('nan')):.2f}"
                     f" s (exit {r.get('returncode')}, close codes {r.get('close_codes')})")
    return results


def _phases(text: str) -> tuple[str, ...]:
    chosen = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = sorted(set(chosen) - set(PHASES))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown phase(s) {', '.join(unknown) or '(none)'}; "
                                         f"choose from {', '.join(PHASES)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="reduced sizes, under 3 minutes")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help="sizes to run (full unless --quick); smoke is for the test suite")
    p.add_argument("--out", type=Path, default=None,
                   help="where results go (default benchmarks/results/<time>)")
    p.add_argument("--web-args", default="", help="extra flags for our web processes")
    p.add_argument("--phases", type=_phases, default=PHASES,
                   help=f"comma list of phases to run (default all: {','.join(PHASES)})")
    p.add_argument("--seconds", type=float, default=None,
                   help="length of each device-like phase (default: the profile's, 10 s full)")
    args = p.parse_args(argv)
    profile = args.profile or ("quick" if args.quick else "full")
    out: Path = args.out or ROOT / "benchmarks" / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    progress = Progress()
    limit = raise_nofile(20_000)
    progress(f"profile {profile}; open-files limit {limit}; results in {out}")
    sizes = PROFILES[profile]
    if args.seconds is not None:
        sizes = replace(sizes, device_seconds=args.seconds)
    load_before = os.getloadavg()
    try:
        results = run(sizes, progress, args.web_args, args.phases)
    except KeyboardInterrupt:
        progress("interrupted: stopping every process")
        return 130
    finally:
        for service in list(Service.all):
            service.kill()
    results["meta"] = {"profile": profile, "phases": list(args.phases),
                       "sizes": asdict(sizes), "line_bytes":
                       scenarios.LINE_BYTES + 1, "senders": scenarios.SENDERS,
                       "seconds": time.monotonic() - progress.start,
                       "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                       "cpus": os.cpu_count(),
                       "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    summary = report.markdown(results) + (sse.markdown(
        results["sse"], results["ours"].get("memory_ws")) if "sse" in results else "")
    summary += tls_phases.markdown(results.get("tls"))
    (out / "summary.md").write_text(summary)
    report.plot(results, out / "bench.png")
    print(summary)
    progress(f"done: {out / 'summary.md'}, {out / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
