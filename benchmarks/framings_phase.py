"""The framings in `make bench` (phase `framings`): `octet-count` and
`length32` flat out next to `newline` in one run, and the tcp worker's CPU
per line of `--parse syslog`.

* Flat out: one of our systems whose three ports speak newline, octet-count
  and length32 (`--framing PORT=METHOD`); one WebSocket client; the same
  lines, framed per port by the senders, to one port at a time, the methods
  interleaved in each round, each round starting with the next one (the
  machine's noise then hits them alike).
  Goal: delivered per client ≥ 0.8× newline for octet-count and length32
  (best of the rounds: 3 in full and quick, 1 in smoke), 0 lost, 0 broken.
  The tcp worker's CPU per line is shown too: it is what the framing changes.
* `--parse syslog`: one tcp worker alone (`benchmarks.ingest`, acks on),
  RFC 5424 lines flat out, with and without `--parse syslog`; the cost is
  the difference in its CPU per line, in µs (lowest of the rounds)."""

from __future__ import annotations

from typing import Any

from benchmarks import ingest, scenarios
from benchmarks.rows import Results, Row, get
from benchmarks.systems import Ours
from testkit.procs import RedisServer

GOAL_RATIO = 0.8
METHODS = ("newline", "octet-count", "length32")
PARSE_CONNECTIONS = 4


def flat_out(lines: int, rounds: int, timeout: float, progress: Any) -> dict[str, Any]:
    system = Ours(tcp_ports=len(METHODS))
    system.framings = {p: m for p, m in zip(system.tcp_ports, METHODS, strict=True)
                       if m != "newline"}
    for port, method in system.framings.items():
        system.supervisor_args += ["--framing", f"{port}={method}"]
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    system.start()
    try:
        order = list(zip(system.tcp_ports, METHODS, strict=True))
        for round_ in range(rounds):  # each round starts with the next method
            for port, method in order[round_ % 3:] + order[:round_ % 3]:
                r = scenarios.deliver(system, 1, lines, timeout, port=port)
                r["tcp_cpu_us"] = r["cpu_by_process"]["tcp"] / max(1, lines) * 1e6
                runs[method].append(r)
                progress(f"framings: {method} flat out, {lines:,} lines: "
                         f"{r['per_client']:,.0f} lines/s, tcp CPU {r['tcp_cpu_us']:.2f} µs/line,"
                         f" lost {r['lost']}, broken {r['broken']}")
    finally:
        system.stop()
    return {m: {"per_client": max(r["per_client"] for r in rs),
                "tcp_cpu_us": min(r["tcp_cpu_us"] for r in rs),
                "lost": sum(r["lost"] for r in rs), "broken": sum(r["broken"] for r in rs),
                "rounds": [{k: r[k] for k in ("per_client", "tcp_cpu_us", "lost", "wall")}
                           for r in rs]}
            for m, rs in runs.items()}


def parse_cost(lines: int, rounds: int, progress: Any) -> dict[str, float]:
    data = ingest.payloads(lines, PARSE_CONNECTIONS, syslog=True)
    wants = [lines // PARSE_CONNECTIONS] * PARSE_CONNECTIONS
    total = sum(wants)
    best = {"plain": float("inf"), "parse": float("inf")}
    redis = RedisServer()
    try:
        for _ in range(rounds):
            for kind, flags in (("plain", ()), ("parse", ("--parse", "syslog"))):
                _secs, cpu = ingest.run_worker(redis.url, data, wants, *flags)
                best[kind] = min(best[kind], cpu / total * 1e6)
    finally:
        redis.stop()
    out = {"plain_us": best["plain"], "parse_us": best["parse"],
           "cost_us": best["parse"] - best["plain"], "lines": float(total)}
    progress(f"framings: --parse syslog costs {out['cost_us']:.2f} µs of tcp worker CPU per "
             f"line ({out['parse_us']:.2f} parsing, {out['plain_us']:.2f} not)")
    return out


def run(lines: int, parse_lines: int, rounds: int, timeout: float,
        progress: Any) -> dict[str, Any]:
    return {"flat_out": flat_out(lines, rounds, timeout, progress),
            "parse_syslog": parse_cost(parse_lines, rounds, progress)}


def _ratio(results: Results, method: str) -> float | None:
    base = get(results, "ours", "framings", "flat_out", "newline", "per_client")
    got = get(results, "ours", "framings", "flat_out", method, "per_client")
    return None if base is None or got is None or not base else got / base


def framing_rows(results: Results) -> list[Row]:
    """Per method: delivered per client, tcp CPU per line; the parse cost."""
    out: list[Row] = []
    flat = results.get("ours", {}).get("framings", {}).get("flat_out", {})
    for method in (m for m in METHODS if m in flat):
        out.append(Row(f"framing {method}, flat out, 1 client: lines/s delivered",
                       "lines/s", None,
                       get(results, "ours", "framings", "flat_out", method, "per_client"), True))
        out.append(Row(f"framing {method}, flat out: tcp worker CPU per line", "µs", None,
                       get(results, "ours", "framings", "flat_out", method, "tcp_cpu_us"), False))
    cost = get(results, "ours", "framings", "parse_syslog", "cost_us")
    if cost is not None:
        out.append(Row("--parse syslog: tcp worker CPU per line (parsing − not)", "µs", None,
                       cost, False))
    return out


def framing_goals(results: Results) -> list[tuple[str, str, bool | None]]:
    """octet-count and length32 flat out ≥ 0.8× newline, 0 lost, 0 broken."""
    out: list[tuple[str, str, bool | None]] = []
    framings = results.get("ours", {}).get("framings")
    if not isinstance(framings, dict):
        return out
    for method in METHODS[1:]:
        ratio = _ratio(results, method)
        lost = get(results, "ours", "framings", "flat_out", method, "lost")
        broken = get(results, "ours", "framings", "flat_out", method, "broken")
        goal = f"{method} flat out ≥ {GOAL_RATIO:g}× newline, 0 lost, 0 broken"
        if ratio is None:
            out.append((goal, "not measured", None))
            continue
        out.append((goal, f"{ratio:.2f}×, lost {lost:.0f}, broken {broken:.0f}",
                    ratio >= GOAL_RATIO and lost == 0 and broken == 0))
    cost = get(results, "ours", "framings", "parse_syslog", "cost_us")
    out.append(("--parse syslog CPU per line reported (µs)",
                "not measured" if cost is None else f"{cost:.2f} µs", None))
    return out
