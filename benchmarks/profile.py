"""Profile our processes under the benchmark's load with py-spy.

`python -m benchmarks.profile [--clients N] [--lines N] [--web-args "..."]`
starts our system, samples every web and tcp worker process with
`py-spy record --format raw` while one flat-out phase runs, and prints the
functions that use the most time in each kind of process (self time: where
the CPU is, and inclusive time: which call paths lead there). The raw
collapsed stacks are kept in --out for flame graphs.

py-spy is not a project dependency: `.venv/bin/pip install py-spy`."""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import scenarios
from benchmarks.measure import raise_nofile
from benchmarks.systems import Original, Ours, Service, System


def summarize(raw: Path, top: int = 15) -> list[str]:
    """Top functions by self and by inclusive sample share of one raw file."""
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split("/")[-1]
                  if " (" in f else f for f in stack.split(";")]
        total += n
        self_t[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    if not total:
        return ["(no samples)"]
    out = [f"{total} samples; self time:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_t.most_common(top)]
    out += ["inclusive time:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--lines", type=int, default=300_000)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--web-args", default="")
    p.add_argument("--original", action="store_true", help="profile the original instead")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/profile"))
    args = p.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(spy, os.X_OK):
        sys.stderr.write("py-spy not found: .venv/bin/pip install py-spy\n")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    raise_nofile(20_000)
    system: System = Original() if args.original else Ours(web_args=args.web_args)
    spies: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        system.start()
        scenarios.deliver(system, 1, 1000, 30.0)  # every process up and warm
        kinds = ({"original": system.server_pids()} if args.original else
                 {"web": system.web_pids(), "tcp": system.tcp_worker_pids()}  # type: ignore[attr-defined]
                 )
        for kind, pids in kinds.items():
            for pid in pids:
                path = args.out / f"{kind}-{pid}.txt"
                spies.append((kind, subprocess.Popen(
                    [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
                     "--output", str(path), "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path))
        time.sleep(1.0)  # py-spy attaches
        result = scenarios.deliver(system, args.clients, args.lines, 120.0, args.rate)
        print(f"{result['per_client']:,.0f} lines/s per client, lost {result['lost']}, "
              f"close codes {result['close_codes']}, latency {result['latency']}")
    finally:
        for _, proc, _ in spies:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for _, proc, _ in spies:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
        system.stop()
        for service in list(Service.all):
            service.kill()
    for kind, _, path in spies:
        if path.exists():
            print(f"== {kind} {path}")
            print("\n".join(summarize(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
