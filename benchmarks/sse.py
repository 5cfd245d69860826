"""SSE next to WebSocket in `make bench`: the same system (ours), the same
senders, the same line checks; only the clients' transport differs.

* flat out at 1 and 100 clients: lines/s per client and the web process's
  CPU per line delivered (goal: SSE within 1.5x of WebSocket);
* memory per idle connection (goal: at most 30 KB per SSE connection),
  next to the main run's WebSocket figure.

`SseClient` is the load generator's client for `/sse` (`--path /sse`): as
hand-made and as cheap per line as `benchmarks.wsclient.WsClient`, whose
line counting it reuses: the chunked body is cut out of one buffer, and an
event's `data:` lines become the same newline-joined payload a raw
WebSocket frame carries."""

from __future__ import annotations

from typing import Any

from benchmarks import scenarios
from benchmarks.systems import Ours
from benchmarks.wsclient import LineCounter, WsClient

GOAL_CPU_RATIO = 1.5
GOAL_IDLE_BYTES = 30_000


class SseClient(WsClient):
    """One `/sse` stream (format=raw); counts each event's lines."""

    def __init__(self, host: str, port: int, path: str, counter: LineCounter) -> None:
        super().__init__(host, port, path, counter)
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        "Accept: text/event-stream\r\n\r\n").encode()
        self.body = bytearray()

    OK_STATUS = b" 200 "

    def _received(self, now: float) -> None:
        self._chunks(now)

    def _chunks(self, now: float) -> None:
        """Cut whole chunks of the chunked body out of `buf` (one copy each,
        as WsClient copies a frame) and count the events in them."""
        buf, pos = self.buf, 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(buf[pos:eol], 16)
            end = eol + 2 + size
            if len(buf) < end + 2:
                break
            if size == 0:
                self.close_code = self.close_code or 1006
            chunk = bytes(buf[eol + 2:end])
            pos = end + 2
            if self.body:  # an event cut between chunks (the server never does)
                self.body += chunk
                chunk = bytes(self.body)
                self.body.clear()
            rest = self._events(chunk, now)
            if rest < len(chunk):
                self.body += chunk[rest:]
        del buf[:pos]

    def _events(self, body: bytes, now: float) -> int:
        """Count every whole event in `body`; returns where the rest starts.
        Fast path without copies: an event of n lines of length L is its
        `id:` line plus n times "\\ndata: " + L bytes."""
        counter, pos = self.counter, 0
        per_line = counter.length + 7
        while (end := body.find(b"\n\n", pos)) >= 0:
            start = body.find(b"\ndata: ", pos, end)
            if body.startswith(b"event: close", pos):
                self.close_code = int(body[start + 7:start + 11])
            elif start >= 0:
                n = body.count(b"\ndata: ", start, end)
                if (counter.latencies is None and end - start == n * per_line
                        and body.count(b"\ndata: s", start, end) == n):
                    counter.frames += 1
                    counter.whole += n
                    counter.t_first = counter.t_first or now
                    counter.t_last = now
                else:
                    counter.frame(body[start + 7:end].replace(b"\ndata: ", b"\n"), now)
            pos = end + 2
        return pos

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def client_protocol(path: str) -> type[WsClient]:
    """The load generator's client class for `--path`."""
    return SseClient if path.startswith("/sse") else WsClient


def run(sizes: Any, progress: Any, web_args: str = "") -> dict[str, Any]:
    """Both transports against one fresh system each phase kind."""
    out: dict[str, Any] = {"ws": {}, "sse": {}}
    paths = {"ws": "/ws", "sse": "/sse"}
    system = Ours(web_args=web_args)
    system.start()
    try:
        for clients, lines in sizes.throughput:
            if clients not in (1, 100):
                continue
            for kind, path in paths.items():
                r = scenarios.deliver(system, clients, lines, sizes.phase_timeout, path=path)
                web_cpu = r["cpu_by_process"]["web"]
                delivered = lines * clients - r["lost"]
                r["web_cpu_per_line_us"] = web_cpu / max(1, delivered) * 1e6
                out[kind][f"throughput_{clients}"] = r
                progress(f"{kind}: flat out, {clients} client(s): {r['per_client']:,.0f} lines/s "
                         f"per client, web CPU {r['web_cpu_per_line_us']:.2f} µs/line, "
                         f"lost {r['lost']}")
    finally:
        system.stop()
    # Fresh processes (memory freed by the phases above would be reused and
    # hide the cost); WebSocket's own figure is the main run's memory_ws.
    fresh = Ours(web_args=web_args)
    fresh.start()
    try:
        r = scenarios.idle_memory(fresh, "ws", list(sizes.memory_steps), path="/sse")
    finally:
        fresh.stop()
    out["sse"]["memory"] = r
    progress("sse: idle connections: " + ", ".join(
        f"{m['bytes_per_conn'] / 1000:.1f} KB each at {m['connections']:,}" for m in r))
    return out


def markdown(results: dict[str, Any], ws_memory: Any) -> str:
    """The SSE section of summary.md (`ws_memory`: the main run's memory_ws)."""
    rows = ["", "## SSE next to WebSocket (ours)", "",
            "| phase | WebSocket | SSE | SSE / WS |", "|---|---|---|---|"]
    for clients in (1, 100):
        key = f"throughput_{clients}"
        ws, sse = results["ws"].get(key), results["sse"].get(key)
        if not ws or not sse:
            continue
        ratio = sse["web_cpu_per_line_us"] / max(1e-9, ws["web_cpu_per_line_us"])
        rows.append(f"| {clients} client(s), lines/s per client | {ws['per_client']:,.0f} | "
                    f"{sse['per_client']:,.0f} | |")
        rows.append(f"| {clients} client(s), web CPU µs/line | "
                    f"{ws['web_cpu_per_line_us']:.2f} | {sse['web_cpu_per_line_us']:.2f} | "
                    f"{ratio:.2f} (goal ≤ {GOAL_CPU_RATIO}) |")
    ws_mem, sse_mem = ws_memory, results["sse"].get("memory")
    if isinstance(ws_mem, list) and isinstance(sse_mem, list):
        for w, s in zip(ws_mem, sse_mem, strict=False):
            rows.append(f"| idle, KB per connection at {s['connections']:,} | "
                        f"{w['bytes_per_conn'] / 1000:.1f} | {s['bytes_per_conn'] / 1000:.1f} | "
                        f"(goal ≤ {GOAL_IDLE_BYTES / 1000:.0f} KB) |")
    return "\n".join(rows) + "\n"


def attempt_run(sizes: Any, progress: Any, web_args: str = "") -> dict[str, Any]:
    """`run`, a failure recorded rather than fatal (as the other phases)."""
    try:
        return run(sizes, progress, web_args)
    except (TimeoutError, RuntimeError, LookupError, OSError) as exc:
        progress(f"sse: FAILED: {exc}".splitlines()[0])
        return {"ws": {}, "sse": {}, "error": str(exc)[:2000]}
