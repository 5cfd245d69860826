"""The device-like phases in the summary: their rows, their goals (CPU per
line ≤ 0.5× the original's, p99 ≤ the original's, 0 lost) and their two
panels of the plot."""

from __future__ import annotations

from typing import Any

from benchmarks.rows import Results, Row, get


def device_keys(results: Results) -> list[str]:
    """The device-like phases run, by connections (`devices_1000x10`, ...)."""
    keys = {k for s in ("original", "ours") for k in results.get(s, {})
            if k.startswith("devices_")}
    return sorted(keys, key=lambda k: (int(k.split("_")[1].split("x")[0]), k))


def device_label(key: str) -> str:
    conns, _, rate = key.split("_")[1].partition("x")
    return f"{int(conns):,} conn × {rate} line{'s' * (rate != '1')}/s"


def device_rows(results: Results) -> list[Row]:
    """Per device-like phase: CPU µs per line (all, then ours by process),
    p50/p99/max, lost, broken."""
    out: list[Row] = []
    for key in device_keys(results):
        label = f"device-like {device_label(key)}"
        out.append(Row(f"{label}: CPU per line, all server processes", "µs",
                       get(results, "original", key, "us_per_line_total"),
                       get(results, "ours", key, "us_per_line_total"), False))
        for kind in ("tcp", "redis", "web"):
            out.append(Row(f"{label}: CPU per line, {kind}", "µs", None,
                           get(results, "ours", key, "us_per_line", kind), False))
        for q in ("p50", "p99", "max"):
            o, u = (get(results, s, key, "latency", q) for s in ("original", "ours"))
            out.append(Row(f"{label}: {q}", "ms", None if o is None else o * 1e3,
                           None if u is None else u * 1e3, False))
        for field in ("lost", "broken"):
            out.append(Row(f"{label}: {field}", "lines", get(results, "original", key, field),
                           get(results, "ours", key, field), False))
    return out


def device_goals(results: Results) -> list[tuple[str, str, bool | None]]:
    """Per device-like phase: CPU per line ≤ 0.5× the original's, p99 ≤ the
    original's, 0 lost (and 0 broken)."""
    out: list[tuple[str, str, bool | None]] = []
    for key in device_keys(results):
        label = device_label(key)
        o, u = (get(results, s, key, "us_per_line_total") for s in ("original", "ours"))
        out.append((f"{label}: CPU per line ≤ 0.5× the original's",
                    "not measured" if o is None or u is None or not o else
                    f"{u / o:.2f}× ({u:.1f} vs {o:.1f} µs)",
                    None if o is None or u is None or not o else u <= 0.5 * o))
        o, u = (get(results, s, key, "latency", "p99") for s in ("original", "ours"))
        out.append((f"{label}: p99 ≤ the original's",
                    "not measured" if o is None or u is None else
                    f"{u * 1e3:.2f} vs {o * 1e3:.2f} ms ({u / o:.2f}×)",
                    None if o is None or u is None else u <= o))
        lost, broken = get(results, "ours", key, "lost"), get(results, "ours", key, "broken")
        out.append((f"{label}: 0 lost, 0 broken",
                    "not measured" if lost is None else f"lost {lost:.0f}, broken {broken:.0f}",
                    None if lost is None else lost == 0 and broken == 0))
    return out


def plot_devices(results: Results, cpu_ax: Any, lat_ax: Any) -> None:
    """CPU µs per line (ours stacked by process) and p50/p99 per device-like phase."""
    keys = device_keys(results)
    xs = list(range(len(keys)))
    labels = [device_label(k) for k in keys]
    orig = [get(results, "original", k, "us_per_line_total") or 0 for k in keys]
    cpu_ax.bar([x - 0.2 for x in xs], orig, 0.4, label="original")
    bottom = [0.0] * len(keys)
    for kind in ("tcp", "redis", "web"):
        part = [get(results, "ours", k, "us_per_line", kind) or 0 for k in keys]
        cpu_ax.bar([x + 0.2 for x in xs], part, 0.4, bottom=bottom, label=f"ours: {kind}")
        bottom = [b + p for b, p in zip(bottom, part, strict=True)]
    cpu_ax.set_xticks(xs, labels, fontsize=8)
    cpu_ax.set_ylabel("server CPU µs per line")
    cpu_ax.set_title("device-like: CPU per line")
    cpu_ax.legend(fontsize=8)
    width = 0.2
    for i, (system, q) in enumerate((("original", "p50"), ("ours", "p50"),
                                     ("original", "p99"), ("ours", "p99"))):
        vals = [(get(results, system, k, "latency", q) or 0) * 1e3 for k in keys]
        lat_ax.bar([x + (i - 1.5) * width for x in xs], vals, width, label=f"{system} {q}")
    lat_ax.set_xticks(xs, labels, fontsize=8)
    lat_ax.set_ylabel("latency, ms (log)")
    if keys:
        lat_ax.set_yscale("log")
    lat_ax.set_title("device-like: latency")
    lat_ax.legend(fontsize=8)
