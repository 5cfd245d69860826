"""`python -m benchmarks.soak [--minutes 10] [--out DIR]` (`make soak`): our
system under a steady device-like load for a long time.

500 connections × 4 lines/s (`benchmarks.devices`), 10 WebSocket clients,
one of which closes and resumes with `since=` every 30 s
(`benchmarks.soakclients`, which checks every connection's sequence). Every
10 s the RSS and CPU of every process of the system (supervisor, redis,
web, tcp workers; by pid, so a restarted child shows as a new one) are
sampled from /proc. Writes DIR/soak.json, DIR/soak.md (the table) and
DIR/soak.png (RSS and CPU over time), prints the table, and exits 1 if any
line was lost or duplicated, or if any process's RSS grew more than 10 %
after the first minute. The RSS rule needs a baseline after minute 1 and
some time after it: below 2 minutes it is reported, never failing. The
history stream is bounded (`--history-maxlen` lines): until it is full,
Redis grows with it by design, so the baseline is taken at minute 1 or
once the history is full, whichever is later (benchmarks.soakreport)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks import soakreport
from benchmarks.devices import Fleet, groups_of_tree, lines_each
from benchmarks.measure import raise_nofile
from benchmarks.scenarios import LoadProc, prime
from benchmarks.systems import ROOT, Ours, Service
from tcp_worker.config import Config as TcpWorkerConfig
from tcpws.protocol import HISTORY_LINES_KEY
from testkit.procfs import cmdline, cpu_seconds, rss_kib

HISTORY_MAXLEN = TcpWorkerConfig.history_maxlen  # the system runs with the defaults


def redis_memory(pid: int) -> dict[str, float]:
    """Redis's own count of the memory it holds (`used_kib`, from
    `used_memory`: data, not allocator fragmentation) and the lines ever
    stored in the history stream (`history`: it is full, and trimmed, once
    they reach --history-maxlen); {} if it cannot be asked.
    The embedded Redis listens on a unix socket named in its process title."""
    found = re.search(r"unixsocket[: ](\S+)", cmdline(pid))
    if not found:
        return {}
    try:
        client = redis.Redis(unix_socket_path=found.group(1), socket_timeout=2)
        with client:
            return {"used_kib": float(client.info("memory")["used_memory"]) / 1024,
                    "history": float(client.zscore(HISTORY_LINES_KEY, "next") or 0)}
    except redis.RedisError:
        return {}


def sample(root: int) -> dict[str, dict[str, float]]:
    """{"tcp 1234": {"rss_kib": ..., "cpu_s": ...}} for every process below
    `root`; Redis also with "used_kib" and "history"."""
    out: dict[str, dict[str, float]] = {}
    for kind, pids in groups_of_tree(root).items():
        for pid in pids:
            out[f"{kind} {pid}"] = {"rss_kib": rss_kib(pid), "cpu_s": cpu_seconds(pid)}
            if kind == "redis":
                out[f"{kind} {pid}"].update(redis_memory(pid))
    return out


def soak(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    load_before = os.getloadavg()
    seconds = args.minutes * 60
    each = lines_each(args.rate, seconds)
    system = Ours()
    system.start()
    print(f"soak: {args.connections} connections × {args.rate:g} lines/s for "
          f"{args.minutes:g} min, {args.clients} clients; results in {out}", flush=True)
    clients = LoadProc("--port", str(system.http_port), "--clients", str(args.clients),
                       "--connections", str(args.connections), "--lines-each", str(each),
                       "--resume-every", str(args.resume_every), "--stat-every",
                       str(args.sample_every), "--prime-tags", str(len(system.tcp_ports)),
                       module="benchmarks.soakclients")
    fleet = Fleet(system.tcp_ports, args.connections, args.rate, seconds)
    samples: list[dict[str, Any]] = []
    try:
        clients.expect("READY", 60)
        prime(system, clients)
        fleet.open()
        t0 = fleet.go()
        while time.monotonic() < t0 + seconds + 1:
            samples.append({"t": max(0.0, time.monotonic() - t0),
                            "procs": sample(system.top.pid)})
            print(soakreport.progress_line(samples), flush=True)
            time.sleep(max(0.0, t0 + len(samples) * args.sample_every - time.monotonic()))
        sent = fleet.wait(seconds + 60)
        got = clients.result(120)
        samples.append({"t": time.monotonic() - t0, "procs": sample(system.top.pid)})
    finally:
        fleet.close()
        clients.kill()
        system.stop()
    return {"load": {"connections": args.connections, "rate_each": args.rate,
                     "minutes": args.minutes, "clients": args.clients,
                     "resume_every": args.resume_every, "lines_each": each,
                     "history_maxlen": HISTORY_MAXLEN},
            "sent": sent, "clients": got, "samples": samples,
            "loadavg": [load_before, os.getloadavg()],
            "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak",
                                description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=500)
    p.add_argument("--rate", type=float, default=4.0, help="lines/s of each connection")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--resume-every", type=float, default=30.0)
    p.add_argument("--sample-every", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=None,
                   help="where results go (default benchmarks/results/soak-<time>)")
    args = p.parse_args(argv)
    out: Path = args.out or ROOT / "benchmarks" / "results" / time.strftime("soak-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    raise_nofile(args.connections + 2000)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    try:
        results = soak(args, out)
    except KeyboardInterrupt:
        return 130
    finally:
        for service in list(Service.all):
            service.kill()
    verdict = soakreport.verdict(results)
    results["verdict"] = verdict
    (out / "soak.json").write_text(json.dumps(results, indent=1))
    table = soakreport.markdown(results)
    (out / "soak.md").write_text(table)
    soakreport.plot(results, out / "soak.png")
    print(table)
    print(f"soak: {'PASS' if verdict['ok'] else 'FAIL'}: {out / 'soak.md'}, {out / 'soak.png'}")
    return 0 if verdict["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
