"""`python -m benchmarks.ab --base DIR [--rounds N] [--rate R] [--clients C]`:
the paced-delivery phase of `make bench` (`scenarios.deliver` at `rate`
lines/s; latency_1000 by default) run against our system built from two
trees, interleaved: base, this tree, base, this tree, ... so that the noise
of a shared machine hits both alike. Both systems stay up for the whole run.

Each tree's own `benchmarks` package drives its own system (a driver process
started with that tree as its working directory, fed one command per round
on stdin), so DIR only needs to be a checkout of any commit that has
`benchmarks.scenarios.deliver` (e.g. `git archive main | tar -x -C DIR`).
Prints each round, then the medians per tree: latency p50/p99/max (ms) and
the web's CPU µs per line."""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.scenarios import LoadProc
from benchmarks.systems import ROOT, Service

# Runs inside each tree (python -c, cwd = the tree): its own benchmarks package.
DRIVER = """
import json, signal, sys
from benchmarks import scenarios
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that `finally` stops the system
from benchmarks.systems import Ours
system = Ours(web_args=sys.argv[1])
system.start()
print("READY", flush=True)
try:
    for command in sys.stdin:
        rate, clients, seconds = json.loads(command)
        r = scenarios.deliver(system, clients, int(rate * seconds), 60.0, rate)
        print("RESULT " + json.dumps(r), flush=True)
finally:
    system.stop()
"""


class Driver(LoadProc):
    """One tree's driver process, read line by line like a load generator."""

    def __init__(self, tree: Path, web_args: str) -> None:
        # Service starts it in ROOT: the driver moves to its tree first.
        code = f"import os, sys; os.chdir({str(tree)!r}); sys.path.insert(0, {str(tree)!r})\n"
        Service.__init__(self, f"driver {tree.name}",
                         [sys.executable, "-c", code + DRIVER, web_args], stdin=True)

    def run(self, rate: float, clients: int, seconds: float) -> dict[str, Any]:
        self.poke((json.dumps([rate, clients, seconds]) + "\n").encode())
        return self.result(seconds + 120)

    def finish(self) -> None:
        """End of stdin: the driver stops its system and exits."""
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=60)
        self.stop(30)


def summary(r: dict[str, Any]) -> dict[str, float]:
    lat = r["latency"]
    web = r["cpu_by_process"].get("web", 0.0)
    delivered = max(1, r["lines"])
    return {"p50": lat["p50"] * 1e3, "p99": lat["p99"] * 1e3, "max": lat["max"] * 1e3,
            "web_us": web / delivered * 1e6, "lost": r["lost"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.split("\n")[0])
    p.add_argument("--base", type=Path, required=True, help="the other tree (the base)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rate", type=float, default=1000.0, help="lines/s (default 1000)")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--web-args", default="", help="extra flags for both webs")
    args = p.parse_args(argv)
    trees = {"base": args.base.resolve(), "new": ROOT}
    drivers = {}
    for name, tree in trees.items():
        drivers[name] = Driver(tree, args.web_args)
    try:
        for d in drivers.values():
            d.expect("READY", 120)
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for i in range(args.rounds):
            for name, d in drivers.items():
                s = summary(d.run(args.rate, args.clients, args.seconds))
                rows[name].append(s)
                print(f"round {i + 1} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in s.items()),
                      flush=True)
        for name, got in rows.items():
            med = {k: statistics.median(r[k] for r in got) for k in got[0]}
            print(f"median {name} ({len(got)} rounds): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    finally:
        for d in drivers.values():
            d.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
