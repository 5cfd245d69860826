"""What each implementation choice is worth: the same short phases against
variants of both systems, one at a time.

`python -m benchmarks.variants [--lines N] [--out DIR]` runs, per variant, a
flat-out phase with 1 and with 10 clients and a 1,000 lines/s latency phase
(10 clients), and writes DIR/variants.md and DIR/variants.json. Our variants
swap uvloop, orjson, hiredis and uvicorn's WebSocket implementation in with
`benchmarks.shim` (standalone processes: redis, one tcp worker per port,
one web), so no module of ours is edited to measure them."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import scenarios
from benchmarks.__main__ import Progress, attempt
from benchmarks.measure import raise_nofile
from benchmarks.systems import ROOT, Original, Ours, Service, System

BIG_QUEUE = "--client-queue-bytes 268435456"

VARIANTS: list[tuple[str, Callable[[], System]]] = [
    ("original (uvloop, websockets-sansio)", Original),
    ("original, loop=asyncio", lambda: Original(uvicorn_loop="asyncio")),
    ("original, ws=websockets (legacy)", lambda: Original(uvicorn_ws="websockets")),
    ("original, ws=wsproto", lambda: Original(uvicorn_ws="wsproto")),
    ("ours, supervisor, defaults", Ours),
    ("ours, supervisor, 256 MiB client queue", lambda: Ours(web_args=BIG_QUEUE)),
    ("ours standalone (the variants below change one thing)", lambda: Ours(standalone=True)),
    ("- uvloop in tcp workers", lambda: Ours(standalone=True, tcp_shim="nouvloop")),
    ("- orjson in web (stdlib json)", lambda: Ours(standalone=True, web_shim="stdjson")),
    ("- RESP2 in web (RESP3)", lambda: Ours(standalone=True, web_shim="resp3")),
    ("- hiredis (web and tcp)", lambda: Ours(standalone=True, web_shim="nohiredis",
                                             tcp_shim="nohiredis")),
    ("web ws=wsproto", lambda: Ours(standalone=True, web_shim="ws=wsproto")),
    ("web ws=websockets (legacy)", lambda: Ours(standalone=True, web_shim="ws=websockets")),
    ("web loop=asyncio", lambda: Ours(standalone=True, web_shim="loop=asyncio")),
    ("ours, supervisor, 2 tcp workers per port", lambda: Ours(tcp_workers=2)),
]


def measure(system: System, lines: int, progress: Progress, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for clients in (1, 10):
        r = attempt(progress, name, partial(scenarios.deliver, system, clients, lines, 90.0))
        out[f"throughput_{clients}"] = r
    out["latency_1000"] = attempt(progress, name, partial(
        scenarios.deliver, system, 10, 3000, 60.0, 1000.0))
    if isinstance(system, Ours) and not system.standalone:
        out["recovery"] = attempt(progress, name, partial(scenarios.recovery, system))
    return out


def cell(r: dict[str, Any]) -> str:
    if "error" in r:
        return "failed"
    lost = f", lost {r['lost']:,}" if r["lost"] else ""
    return f"{r['per_client']:,.0f}{lost}"


def cpu_cell(r: dict[str, Any]) -> str:
    """CPU time per line sent, by process kind: a figure that contention
    from other work on the machine disturbs far less than a rate."""
    if "error" in r:
        return "failed"
    return ", ".join(f"{kind} {secs / r['lines'] * 1e6:.2f}"
                     for kind, secs in r["cpu_by_process"].items())


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| variant | 1 client, lines/s | 10 clients, lines/s per client | "
             "CPU µs per line sent, 10 clients | 1k lines/s p50 / p99 ms | "
             "kill -9 → delivering, s |", "|---|---:|---:|---|---:|---:|"]
    for name, r in results.items():
        lat = r["latency_1000"].get("latency", {})
        latency = (f"{lat['p50'] * 1e3:.2f} / {lat['p99'] * 1e3:.2f}" if lat.get("n")
                   else "failed")
        rec = r.get("recovery", {}).get("seconds")
        lines.append(f"| {name} | {cell(r['throughput_1'])} | {cell(r['throughput_10'])} | "
                     f"{cpu_cell(r['throughput_10'])} | {latency} | "
                     f"{'n/a' if rec is None else f'{rec:.3f}'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.variants")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--only", default="", help="run only variants whose name contains this")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "variants")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    raise_nofile(20_000)
    progress = Progress()
    results: dict[str, dict[str, Any]] = {}
    try:
        for name, make in VARIANTS:
            if args.only not in name:
                continue
            system = make()
            try:
                system.start()
                results[name] = measure(system, args.lines, progress, name)
            finally:
                system.stop()
            r = results[name]
            progress(f"{name}: 1 client {cell(r['throughput_1'])}, "
                     f"10 clients {cell(r['throughput_10'])}")
    except KeyboardInterrupt:
        return 130
    finally:
        for service in list(Service.all):
            service.kill()
    (args.out / "variants.json").write_text(json.dumps(results, indent=1))
    text = (f"# Variants ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{args.lines:,} lines flat out)\n\n" + table(results))
    (args.out / "variants.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
