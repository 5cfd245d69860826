"""CPU per frame of each framing method and of the syslog parser, in
process (no sockets): `python -m benchmarks.framings`.

`Framer` is today's newline framer, `newline` the method wrapping it (with
the exact bytes of non-UTF-8 lines), `syslog-lines` the syslog method fed
newline-delimited lines, `octet-count-nl` frames whose MSG ends with a
counted "\n" (rsyslog's), `-pure` the pure-Python scan (what runs when the
compiled one, tcp_worker/framings/_scan.c, is not importable). The end-to-end figures (`python -m
benchmarks`) are what the contract judges; this one isolates the framer and
the parser, so a change to either can be compared with the code before it."""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.framed import frame
from tcp_worker.framing import Framer
from tcp_worker.framings import make_framer
from tcpws.syslog import parse

LINE = (b'<13>1 2026-12-04T17:58:29.251005+00:00 vm root - - [timeQuality tzKnown="1" '
        b'isSynced="0"] a line of about a hundred bytes')


def encode(method: str, line: bytes, count: int) -> bytes:
    if method in ("plain", "syslog-lines"):
        return (line + b"\n") * count
    method = method.removesuffix("-pure")
    if method == "octet-count-nl":  # as rsyslog sends: MSG ends with a counted "\n"
        return (b"%d %s\n" % (len(line) + 1, line)) * count
    return frame(method, line) * count


METHODS = ("plain", "newline", "octet-count", "octet-count-nl", "syslog", "syslog-lines",
           "length32", "octet-count-pure", "length32-pure")


def per_frame(chunk: int, count: int, rounds: int = 7) -> dict[str, float]:
    """Seconds of CPU per frame for each method, reads of `chunk` bytes:
    best of `rounds`, the methods interleaved in each round (a loaded
    machine then slows them alike)."""
    streams = {}
    for method in METHODS:
        stream = encode(method, LINE, count)
        streams[method] = [stream[i:i + chunk] for i in range(0, len(stream), chunk)]
    best = dict.fromkeys(METHODS, float("inf"))
    for _ in range(rounds):
        for method, chunks in streams.items():
            name = method.removesuffix("-lines").removesuffix("-nl").removesuffix("-pure")
            framer: Any = (Framer(65536) if method == "plain" else
                           make_framer(name, 65536, False if method.endswith("-pure") else None))
            feed = framer.feed_block
            started = time.process_time()
            frames = sum(feed(c)[1] for c in chunks)
            best[method] = min(best[method], time.process_time() - started)
            assert frames >= count - 1, (method, frames)
    return {method: seconds / count for method, seconds in best.items()}


def parse_cost(count: int) -> float:
    lines = [LINE.decode()] * count
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for line in lines:
            parse(line)
        best = min(best, time.process_time() - started)
    return best / count


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--frames", type=int, default=200_000)
    args.add_argument("--chunk", type=int, default=65536, help="bytes per read")
    ns = args.parse_args()
    costs = per_frame(ns.chunk, ns.frames)
    plain = costs["plain"]
    print(f"{'method':<18}{'µs/frame':>10}{'x Framer':>10}")
    for method, cost in costs.items():
        name = "Framer" if method == "plain" else method
        print(f"{name:<18}{cost * 1e6:>10.3f}{plain / cost:>10.2f}")
    print(f"syslog parse: {parse_cost(ns.frames // 4) * 1e6:.2f} µs/line")


if __name__ == "__main__":
    main()
