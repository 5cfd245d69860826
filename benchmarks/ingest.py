"""One TCP worker's ingestion rate into Redis, against one PUBLISH per line.

    python -m benchmarks.ingest --lines 200000 [--connections 4] [--no-baseline]
        [--framing newline|octet-count|syslog|length32] [--parse syslog]
    python -m benchmarks.ingest --rate 1000 [--seconds 10]

Starts a private redis-server, then `python -m tcp_worker --ack` on a free
port, and writes the pre-built payload over `--connections` connections at
once. The clock stops when the worker has acknowledged every line, i.e. when
every line is stored in the history stream and published live. Then the same
payload goes to a baseline server (`--serve-baseline`, below): the same
chunked framing, but one `await PUBLISH` per line, as a naive port of the
original design would do (a round trip per line caps it near 85k lines/s).
Both are separate processes, so the sender (this process) does not share
their core. Not part of the test suite. `--framing` frames the same lines
as that method does (the worker gets the flag too); `--parse syslog` sends
RFC 5424 lines to a worker parsing them (the baseline is always newline).

With `--rate`, one connection sends one line per write at that pace for
`--seconds`, and the result is the worker's (and Redis's) CPU time per line
(utime + stime from /proc, so the sender's own cost is not in it) and the
ack latency per line (write to its `+N`), p50 / p99."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import redis.asyncio as aioredis

from benchmarks.framed import METHODS, frame
from testkit.procfs import cpu_seconds
from testkit.procs import Proc, RedisServer, free_port, python_module


async def blast(port: int, payloads: list[bytes], wants: list[int] | None = None) -> float:
    """Send each payload on its own connection; return seconds until every
    line is acked (`+N` lines summed; `wants`: the frames in each payload,
    by default its newlines), then close."""
    async def one(payload: bytes, want: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        got = 0
        buf = b""
        while got < want:
            chunk = await reader.read(65536)
            if not chunk:
                raise RuntimeError(f"connection closed after {got} of {want} acks")
            buf += chunk
            *done, buf = buf.split(b"\n")
            got += sum(int(x[1:]) for x in done if x)
        writer.close()
        await writer.wait_closed()

    start = time.perf_counter()
    counts = wants if wants is not None else [p.count(b"\n") for p in payloads]
    await asyncio.wait_for(asyncio.gather(*(one(p, n) for p, n in zip(payloads, counts,
                                                                     strict=True))), 600)
    return time.perf_counter() - start


def payloads(lines: int, connections: int, framing: str = "newline",
             syslog: bool = False) -> list[bytes]:
    """`lines` lines over `connections` payloads, framed by `framing`."""
    per = lines // connections
    text = b"<11>1 - host app - - - conn %d line %08d" if syslog else \
        b"conn %d line %08d some payload text"
    return [b"".join(frame(framing, text % (c, i)) for i in range(per))
            for c in range(connections)]


async def serve_baseline(port: int, redis_url: str) -> None:
    """Chunked framing, then one PUBLISH round trip per line; `+N` per chunk."""
    client = aioredis.Redis.from_url(redis_url)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tail = b""
        while chunk := await reader.read(65536):
            *lines, tail = (tail + chunk).split(b"\n")
            for line in lines:
                await client.publish("bench:baseline", line.decode("utf-8", "replace"))
            writer.write(b"+%d\n" % len(lines))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("baseline ready", flush=True)
    async with server:
        await server.serve_forever()


async def paced(port: int, rate: float, seconds: float) -> list[float]:
    """One line per write at `rate` lines/s; return each line's ack latency."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent: list[float] = []
    latencies: list[float] = []
    total = int(rate * seconds)

    async def acks() -> None:
        buf = b""
        while len(latencies) < total:
            chunk = await reader.read(4096)
            if not chunk:
                raise RuntimeError(f"connection closed after {len(latencies)} acks")
            now = time.perf_counter()
            buf += chunk
            *done, buf = buf.split(b"\n")
            for ack in done:
                for _ in range(int(ack[1:])):
                    latencies.append(now - sent[len(latencies)])

    reading = asyncio.create_task(acks())
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent.append(time.perf_counter())
        writer.write(b"paced line %08d some payload text\n" % i)
    await asyncio.wait_for(reading, 60)
    writer.close()
    await writer.wait_closed()
    return latencies


def run_paced(redis: RedisServer, rate: float, seconds: float) -> str:
    port = free_port()
    proc = Proc(python_module("tcp_worker", "--port", str(port), "--ack"),
                env={"REDIS_URL": redis.url}, name="worker")
    assert redis.proc is not None
    try:
        proc.wait_for_output("ready on")
        asyncio.run(paced(port, rate, 1.0))  # warm-up
        cpu0, rcpu0 = cpu_seconds(proc.pid), cpu_seconds(redis.proc.pid)
        lat = asyncio.run(paced(port, rate, seconds))
        cpu, rcpu = cpu_seconds(proc.pid) - cpu0, cpu_seconds(redis.proc.pid) - rcpu0
    finally:
        proc.stop(timeout=15)
    lat.sort()
    n = len(lat)
    return (f"paced {rate:,.0f} lines/s for {seconds:g} s ({n} lines): tcp_worker "
            f"{cpu / n * 1e6:.0f} us CPU per line, redis {rcpu / n * 1e6:.0f} us; ack latency "
            f"p50 {statistics.median(lat) * 1e3:.2f} ms, p99 {lat[int(n * 0.99)] * 1e3:.2f} ms")


def run_worker(redis_url: str, data: list[bytes], wants: list[int],
               *args: str) -> tuple[float, float]:
    """Seconds until every line is acked, and the worker's CPU seconds meanwhile."""
    port = free_port()
    proc = Proc(python_module("tcp_worker", "--port", str(port), "--ack", *args),
                env={"REDIS_URL": redis_url}, name="worker")
    try:
        proc.wait_for_output("ready on")
        cpu = cpu_seconds(proc.pid)
        secs = asyncio.run(blast(port, data, wants))
        return secs, cpu_seconds(proc.pid) - cpu
    finally:
        proc.stop(timeout=15)


def run_baseline(redis_url: str, data: list[bytes]) -> float:
    port = free_port()
    proc = Proc(python_module("benchmarks.ingest", "--serve-baseline", str(port),
                              "--redis-url", redis_url), name="baseline")
    try:
        proc.wait_for_output("baseline ready")
        return asyncio.run(blast(port, data))
    finally:
        proc.stop(timeout=15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.ingest", description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--rate", type=float, help="paced mode: lines/s on one connection")
    parser.add_argument("--seconds", type=float, default=10.0, help="paced mode: duration")
    parser.add_argument("--framing", default="newline", choices=METHODS)
    parser.add_argument("--parse", choices=("syslog",), help="send syslog lines, parse them")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        asyncio.run(serve_baseline(args.serve_baseline, args.redis_url))
        return 0
    if args.rate:
        server = RedisServer()
        try:
            print(run_paced(server, args.rate, args.seconds))
        finally:
            server.stop()
        return 0
    data = payloads(args.lines, args.connections, args.framing, args.parse == "syslog")
    wants = [args.lines // args.connections] * args.connections
    total = sum(wants)
    flags = ["--framing", args.framing, *(["--parse", "syslog"] if args.parse else [])]
    server = RedisServer()
    try:
        secs, cpu = run_worker(server.url, data, wants, *flags)
        rate = total / secs
        print(f"tcp_worker {' '.join(flags)}: {total} lines over {args.connections} "
              f"connections stored "
              f"in {secs:.2f} s: {rate:,.0f} lines/s, {cpu / total * 1e9:.0f} ns CPU per line")
        if not args.no_baseline:
            # The baseline is slow: a tenth of the lines measures its rate well.
            small = payloads(max(args.connections, args.lines // 10), args.connections)
            base = sum(p.count(b"\n") for p in small) / run_baseline(server.url, small)
            print(f"baseline (one PUBLISH per line): {base:,.0f} lines/s; "
                  f"tcp_worker is {rate / base:.1f}x faster")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
