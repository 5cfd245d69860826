"""Turn one run's results into a Markdown summary (every figure with its
ratio to the original, the goals, the load generator's CPU) and a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.framings_phase import framing_goals, framing_rows
from benchmarks.report_devices import device_goals, device_keys, device_rows, plot_devices
from benchmarks.rows import Results, Row, get
from benchmarks.tls_phases import goal as tls_goal


def _memory(results: Results, system: str, kind: str, count: int) -> float | None:
    for m in results.get(system, {}).get(f"memory_{kind}") or []:
        if isinstance(m, dict) and m.get("connections") == count:
            return float(m["bytes_per_conn"]) / 1000
    return None


def rows(results: Results) -> list[Row]:
    out: list[Row] = []
    for key in sorted(k for k in results.get("ours", {}) if k.startswith("throughput_")):
        c = key.split("_")[1]
        for field, unit, better in (("per_client", "lines/s", True), ("lost", "lines", False),
                                    ("broken", "lines", False)):
            label = {"per_client": "delivered per client", "lost": "lost",
                     "broken": "broken"}[field]
            name = f"flat out, {c} client{'s' * (c != '1')}: {label}"
            out.append(Row(name, unit, get(results, "original", key, field),
                           get(results, "ours", key, field), better))
    for key in sorted((k for k in results.get("ours", {}) if k.startswith("latency_")),
                      key=lambda k: int(k.split("_")[1])):
        rate = int(key.split("_")[1])
        for q in ("p50", "p99", "max"):
            o, u = (get(results, s, key, "latency", q) for s in ("original", "ours"))
            out.append(Row(f"latency at {rate:,} lines/s: {q}", "ms",
                           None if o is None else o * 1e3, None if u is None else u * 1e3, False))
    out += device_rows(results)
    out += framing_rows(results)
    for kind, label in (("ws", "WebSocket"), ("tcp", "TCP connection")):
        counts = sorted({m["connections"] for m in results.get("ours", {}).get(f"memory_{kind}")
                         or [] if isinstance(m, dict)})
        for n in counts:
            out.append(Row(f"memory per idle {label} ({n:,} open)", "KB",
                           _memory(results, "original", kind, n), _memory(results, "ours", kind, n),
                           False))
    for key, label in (("shutdown_idle", "shutdown, idle"), ("shutdown_loaded",
                                                             "shutdown, under load")):
        if key in results.get("ours", {}):
            out.append(Row(label, "s", get(results, "original", key, "seconds"),
                           get(results, "ours", key, "seconds"), False))
    if "recovery" in results.get("ours", {}):
        out.append(Row("kill -9 of a TCP worker → delivering again", "s", None,
                       get(results, "ours", "recovery", "seconds"), False))
    return out


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit in ("lines/s", "lines"):
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"


def _ratio(row: Row) -> str:
    r = row.ratio
    if r is None:
        if row.original == 0 and row.ours == 0:
            return "= (both 0)"
        return "n/a" if row.original is None else "—"
    better = (r > 1) if row.higher_is_better else (r < 1)
    return f"{r:.2f}× {'better' if better else 'worse' if r != 1 else ''}".rstrip()


def goals(results: Results) -> list[tuple[str, str, bool | None]]:
    """(goal, measured, met?) for each goal the benchmark is held to."""
    out: list[tuple[str, str, bool | None]] = []
    ours = results.get("ours", {})
    ran_throughput = any(k.startswith("throughput_") for k in ours)
    for clients, want in ((1, 2.0), (10, 3.0), (100, 3.0)) if ran_throughput else ():
        key = f"throughput_{clients}"
        who = f"{clients} client{'s' * (clients > 1)}"
        o = get(results, "original", key, "per_client")
        u = get(results, "ours", key, "per_client")
        lost, broken = get(results, "ours", key, "lost"), get(results, "ours", key, "broken")
        if o is None or u is None:
            out.append((f"throughput ≥ {want:g}× at {who}", "not measured", None))
            continue
        ok = u / o >= want and lost == 0 and broken == 0
        out.append((f"throughput ≥ {want:g}× at {who}, 0 lost, 0 broken",
                    f"{u / o:.2f}×, lost {lost:.0f}, broken {broken:.0f}", ok))
    lat = ours.get("latency_1000", {}).get("latency", {})
    if lat.get("n"):
        out.append(("1,000 lines/s: p50 ≤ 1 ms, p99 ≤ 2 ms",
                    f"p50 {lat['p50'] * 1e3:.2f} ms, p99 {lat['p99'] * 1e3:.2f} ms",
                    lat["p50"] <= 1e-3 and lat["p99"] <= 2e-3))
    for kind, limit in (("ws", 30.0), ("tcp", 10.0)):
        counts = [m for m in ours.get(f"memory_{kind}") or [] if isinstance(m, dict)]
        if counts:
            biggest = max(counts, key=lambda m: m["connections"])
            kb = biggest["bytes_per_conn"] / 1000
            out.append((f"≤ {limit:g} KB per idle {kind} connection",
                        f"{kb:.1f} KB at {biggest['connections']:,}", kb <= limit))
    out += device_goals(results)
    out += framing_goals(results)
    if (tls := tls_goal(results.get("tls"))) is not None:
        out.append(tls)
    rec = get(results, "ours", "recovery", "seconds")
    if "recovery" in ours:
        out.append(("kill -9 of a TCP worker → accepting again ≤ 0.5 s",
                    "not measured" if rec is None else f"{rec:.3f} s", None if rec is None
                    else rec <= 0.5))
    return out


def cpu_table(results: Results) -> list[str]:
    lines = ["| phase | system | wall s | load generator CPU s | system CPU s | "
             "system CPU µs per line sent | by process, s |", "|---|---|---:|---:|---:|---:|---|"]
    for system in ("original", "ours"):
        for key, r in results.get(system, {}).items():
            if isinstance(r, dict) and "loadgen_cpu" in r:
                parts = ", ".join(f"{k} {v:.2f}" for k, v in r.get("cpu_by_process", {}).items())
                lines.append(f"| {key} | {system} | {r['wall']:.2f} | {r['loadgen_cpu']:.2f} | "
                             f"{r['server_cpu']:.2f} | {r['server_cpu'] / r['lines'] * 1e6:.2f} | "
                             f"{parts} |")
    return lines


def _load(values: Any) -> str:
    return "/".join(f"{v:.1f}" for v in values) if isinstance(values, list | tuple) else "?"


def markdown(results: Results) -> str:
    meta = results.get("meta", {})
    out = [f"# Benchmark: ours vs the original design ({meta.get('profile', '?')} run, "
           f"{meta.get('when', '')})", "",
           f"Lines of {meta.get('line_bytes', '?')} bytes, {meta.get('senders', '?')} TCP "
           f"senders; ratio = ours / original. {meta.get('cpus', '?')} CPUs; load average "
           f"{_load(meta.get('loadavg_before'))} before the run, "
           f"{_load(meta.get('loadavg_after'))} after (other work on the machine competes "
           f"with both systems alike). Run took {meta.get('seconds', 0):.0f} s.", "",
           "| figure | unit | original | ours | ratio |", "|---|---|---:|---:|---|"]
    out += [f"| {r.figure} | {r.unit} | {fmt(r.original, r.unit)} | {fmt(r.ours, r.unit)} | "
            f"{_ratio(r)} |" for r in rows(results)]
    out += ["", "## Goals", "", "| goal | measured | met |", "|---|---|---|"]
    out += [f"| {g} | {m} | {'yes' if ok else 'NO' if ok is not None else '?'} |"
            for g, m, ok in goals(results)]
    out += ["", "## CPU per phase", "", *cpu_table(results), ""]
    errors = [f"- {s} {k}: {v['error'].splitlines()[0]}" for s in ("original", "ours")
              for k, v in results.get(s, {}).items() if isinstance(v, dict) and "error" in v]
    if errors:
        out += ["## Failed phases", "", *errors, ""]
    return "\n".join(out)


def plot(results: Results, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_rows = rows(results)
    groups = [("delivered per client", "lines/s per client (log)", True),
              ("latency", "latency, ms (log)", True),
              ("memory", "KB per idle connection", False),
              ("shutdown", "seconds", False)]
    # Only the panels of the phases that ran.
    groups = [g for g in groups if any(g[0] in r.figure for r in all_rows)]
    devices = bool(device_keys(results))
    panels = len(groups) + 2 * devices
    cols = min(3, max(1, panels))
    fig, axes = plt.subplots((panels + cols - 1) // cols or 1, cols,
                             figsize=(6.3 * cols, 4 * ((panels + cols - 1) // cols or 1)),
                             squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    if devices:
        plot_devices(results, flat[len(groups)], flat[len(groups) + 1])
    for ax, (needle, ylabel, log) in zip(flat, groups, strict=False):
        chosen = [r for r in all_rows if needle in r.figure]
        xs = range(len(chosen))
        ax.bar([x - 0.2 for x in xs], [r.original or 0 for r in chosen], 0.4, label="original")
        ax.bar([x + 0.2 for x in xs], [r.ours or 0 for r in chosen], 0.4, label="ours")
        ax.set_xticks(list(xs), [r.figure.replace(needle, "").strip(" :,") or r.figure
                                 for r in chosen], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(needle)
        if log and chosen:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

