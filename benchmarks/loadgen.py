"""The load generator, run by the harness as separate processes (so that
senders and WebSocket clients do not share one core):

* `clients`: C WebSocket clients. Prints `READY` once all are open, `PRIMED`
  once every client has seen a probe line (the whole path works), `PROBE
  <line> <t>` for each later probe, then `RESULT {json}` when every client has
  all `--expect` lines, the data stops for `--idle` seconds, `--timeout`
  passes, every client was closed, or stdin closes.
* `senders`: S TCP senders over the given ports; flat out (`--rate 0`: the
  whole pre-built payload written at once) or paced at `--rate` lines/s in
  total, each line stamped with its send time. Prints `RESULT {json}`.
* `hold`: open idle connections (`--kind ws|tcp`) up to each of `--steps`,
  printing `HOLD <n>` and waiting for a line on stdin before the next step.

Times are `time.monotonic()`, which is one clock for all processes of the
machine. Every process reports the CPU time it used."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import uvloop

from benchmarks.framed import METHODS, reframe
from benchmarks.sse import client_protocol
from benchmarks.wsclient import LineCounter, WsClient, make_line, open_clients, timestamp

ZERO_TS = b"0" * 17


def cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def stdin_line() -> None:
    """Returns when the harness writes a line to our stdin or closes it.

    Read in a daemon thread: an executor thread blocked in readline() would
    hold up the interpreter's exit."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    def read() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(finish)

    threading.Thread(target=read, daemon=True).start()
    await done


async def poll(cond: Callable[[], bool], interval: float = 0.01) -> None:
    """Return once `cond()` holds (the caller bounds the wait)."""
    while True:
        if cond():
            return
        await asyncio.sleep(interval)


async def run_clients(args: argparse.Namespace) -> dict[str, Any]:
    counters = [LineCounter(args.line_bytes, [] if args.latency else None)
                for _ in range(args.clients)]
    clients = await open_clients(args.host, args.port, args.path, counters,
                                 protocol=client_protocol(args.path), tls=tls_context(args))
    emit("READY")
    stop = asyncio.ensure_future(stdin_line())
    async with asyncio.timeout(args.prime_timeout):
        await poll(lambda: all(c.probes for c in counters)
                   and len({p for p, _ in counters[0].probes}) >= args.prime_tags)
    emit("PRIMED")
    cpu0 = cpu_used()  # start-up and connecting are not part of the phase
    seen = len(counters[0].probes)
    deadline = time.monotonic() + args.timeout
    while not stop.done():
        await asyncio.sleep(0.02)
        now = time.monotonic()
        probes = counters[0].probes
        for probe, when in probes[seen:]:
            emit(f"PROBE {probe.decode()} {when:.6f}")
        seen = len(probes)
        last = max(c.t_last for c in counters)
        if args.expect and all(c.whole + c.broken >= args.expect for c in counters):
            break
        if now > deadline or all(cl.closed.is_set() for cl in clients):
            break
        if last and now - last > args.idle:
            break
    stop.cancel()
    return client_result(counters, clients, cpu0)


def client_result(counters: list[LineCounter], clients: list[WsClient],
                  cpu0: float) -> dict[str, Any]:
    latencies: list[float] = []
    for c in counters:
        latencies.extend(c.latencies or ())
    latencies.sort()
    return {
        "whole": [c.whole for c in counters],
        "broken": [c.broken for c in counters],
        "frames": sum(c.frames for c in counters),
        "t_first": [c.t_first for c in counters],
        "t_last": [c.t_last for c in counters],
        "close_codes": [cl.close_code for cl in clients if cl.close_code is not None],
        "latencies": latencies_summary(latencies),
        "cpu": cpu_used() - cpu0,
    }


def latencies_summary(values: list[float]) -> dict[str, Any]:
    """n, p50, p99, max, and `q`: the values at ranks 0, 0.1 %, ... 100 %
    (1,001 points), so that several processes' latencies can be merged."""
    from benchmarks.measure import percentile
    if not values:
        return {"n": 0}
    last = len(values) - 1
    return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": values[-1], "q": [values[round(i * last / 1000)] for i in range(1001)]}


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """`--tls-ca FILE`: speak TLS (senders) and wss:// (clients), trusting FILE."""
    return ssl.create_default_context(cafile=args.tls_ca) if args.tls_ca else None


def flat_payload(sender: int, lines: int, length: int) -> bytes:
    return b"".join(make_line(sender, seq, ZERO_TS, length) for seq in range(lines))


async def send_flat(port: int, host: str, payload: bytes,
                    tls: ssl.SSLContext | None = None) -> float:
    """Write the whole payload at once (TCP flow control paces us); return
    the time the last byte was handed to the kernel."""
    _, writer = await asyncio.open_connection(host, port, ssl=tls)
    writer.write(payload)
    await writer.drain()
    done = time.monotonic()
    writer.close()
    await writer.wait_closed()
    return done


async def send_paced(sender: int, port: int, host: str, lines: int, length: int,
                     rate: float, t0: float, tls: ssl.SSLContext | None = None) -> float:
    """Send `lines` at `rate` lines/s, each stamped with the time it is written."""
    _, writer = await asyncio.open_connection(host, port, ssl=tls)
    sent = 0
    while sent < lines:
        now = time.monotonic()
        due = min(lines, int((now - t0) * rate) + 1)
        if due > sent:
            ts = timestamp(now)
            writer.write(b"".join(make_line(sender, seq, ts, length)
                                  for seq in range(sent, due)))
            sent = due
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()
        await asyncio.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    return time.monotonic()


async def run_senders(args: argparse.Namespace) -> dict[str, Any]:
    ports = [int(p) for p in args.ports.split(",")]
    share = [args.lines // args.senders + (i < args.lines % args.senders)
             for i in range(args.senders)]
    payloads = [] if args.rate else [reframe(flat_payload(i, share[i], args.line_bytes),
                                             args.framing) for i in range(args.senders)]
    tls = tls_context(args)
    cpu0 = cpu_used()  # building the payloads is not part of the phase
    t0 = time.monotonic()
    async with asyncio.timeout(args.timeout):
        if args.rate:
            per = args.rate / args.senders
            ends = await asyncio.gather(*(
                send_paced(i, ports[i % len(ports)], args.host, share[i], args.line_bytes,
                           per, t0, tls) for i in range(args.senders)))
        else:
            ends = await asyncio.gather(*(
                send_flat(ports[i % len(ports)], args.host, payloads[i], tls)
                for i in range(args.senders)))
    return {"t0": t0, "t_end": max(ends), "sent": args.lines, "cpu": cpu_used() - cpu0}


async def run_hold(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    held: list[Any] = []
    ports = [int(p) for p in args.ports.split(",") if p]
    gate = asyncio.Semaphore(100)

    async def one_tcp(i: int) -> asyncio.BaseTransport:
        async with gate:
            transport, _ = await loop.create_connection(
                asyncio.Protocol, args.host, ports[i % len(ports)])
            return transport

    for step in (int(s) for s in args.steps.split(",")):
        async with asyncio.timeout(args.timeout):
            if args.kind == "ws":
                counters = [LineCounter(args.line_bytes) for _ in range(step - len(held))]
                held.extend(await open_clients(args.host, args.port, args.path, counters,
                                               protocol=client_protocol(args.path)))
            else:
                held.extend(await asyncio.gather(*(one_tcp(i)
                                                   for i in range(len(held), step))))
        emit(f"HOLD {len(held)}")
        await stdin_line()
    return {"held": len(held), "cpu": cpu_used()}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    p.add_argument("mode", choices=["clients", "senders", "hold"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="HTTP port (clients)")
    p.add_argument("--ports", default="", help="comma list of TCP ports (senders, hold)")
    p.add_argument("--path", default="/ws", help="/ws, or /sse for SSE clients")
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--senders", type=int, default=3)
    p.add_argument("--lines", type=int, default=0, help="lines to send in total")
    p.add_argument("--expect", type=int, default=0, help="lines each client should get")
    p.add_argument("--rate", type=float, default=0.0, help="lines/s in total; 0 = flat out")
    p.add_argument("--line-bytes", type=int, default=59, help="line length without newline")
    p.add_argument("--latency", action="store_true", help="record each line's latency")
    p.add_argument("--idle", type=float, default=5.0)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--prime-timeout", type=float, default=30.0)
    p.add_argument("--prime-tags", type=int, default=1,
                   help="distinct probe lines (one per TCP port) before PRIMED")
    p.add_argument("--framing", choices=METHODS, default="newline",
                   help="how flat-out senders frame their lines (the ports' --framing)")
    p.add_argument("--kind", choices=["ws", "tcp"], default="ws")
    p.add_argument("--steps", default="1000")
    p.add_argument("--tls-ca", default="",
                   help="TLS to the TCP ports and wss:// to the web, trusting this PEM CA")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runner = {"clients": run_clients, "senders": run_senders, "hold": run_hold}[args.mode]
    try:
        result = uvloop.run(runner(args))
    except (TimeoutError, OSError) as exc:
        emit("RESULT " + json.dumps({"error": f"{type(exc).__name__}: {exc}",
                                     "cpu": cpu_used()}))
        return 1
    emit("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
