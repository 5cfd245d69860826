"""The soak run's verdict, table and plot (`benchmarks.soak`).

RSS rule: each process's baseline is its RSS in the first sample taken at
or after minute 1, or once the history stream holds its `--history-maxlen`
lines if that is later (a bounded history filling up is Redis growing by
design, not a leak); it fails when a later sample is more than 10 % above
it. It applies only to runs of 2 minutes or more (before that there is no
"after the first minute" worth the name); shorter runs report it."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

RSS_GROWTH_LIMIT = 0.10
BASELINE_AFTER = 60.0
RSS_RULE_MINUTES = 2.0


def _procs(samples: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for s in samples:
        names.update(dict.fromkeys(s["procs"]))
    return list(names)


FULL = 0.99  # of --history-maxlen: trimming is approximate (whole stream nodes)


def baseline_time(samples: list[dict[str, Any]], maxlen: float | None) -> float:
    """When the RSS baseline is taken: minute 1, or the first sample whose
    history holds `maxlen` lines if later (the end, if it never does)."""
    if not maxlen:
        return BASELINE_AFTER
    full = [s["t"] for s in samples
            if any(p.get("history", 0) >= FULL * maxlen for p in s["procs"].values())]
    return max(BASELINE_AFTER, full[0] if full else samples[-1]["t"])


def rss_growth(samples: list[dict[str, Any]], maxlen: float | None = None
               ) -> dict[str, dict[str, float]]:
    """Per process: baseline RSS (KiB) at `baseline_time`, the largest later, growth."""
    out: dict[str, dict[str, float]] = {}
    start = baseline_time(samples, maxlen)
    late = [s for s in samples if s["t"] >= start]
    for name in _procs(late):
        values = [s["procs"][name]["rss_kib"] for s in late if name in s["procs"]]
        values = [v for v in values if v]
        if values:
            out[name] = {"base_kib": values[0], "max_kib": max(values),
                         "growth": max(values) / values[0] - 1}
    return out


def cpu_percent(samples: list[dict[str, Any]], name: str) -> list[float | None]:
    """CPU % of one process over each interval between samples."""
    out: list[float | None] = []
    for a, b in pairwise(samples):
        if name in a["procs"] and name in b["procs"] and b["t"] > a["t"]:
            cpu = b["procs"][name]["cpu_s"] - a["procs"][name]["cpu_s"]
            out.append(100 * cpu / (b["t"] - a["t"]))
        else:
            out.append(None)
    return out


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    clients = results["clients"]["clients"]
    lost, dups = sum(c["lost"] for c in clients), sum(c["dups"] for c in clients)
    broken = sum(c["broken"] for c in clients)
    load, samples = results["load"], results["samples"]
    expected = load["connections"] * load["lines_each"]
    growth = rss_growth(samples, load.get("history_maxlen"))
    applies = load["minutes"] >= RSS_RULE_MINUTES
    grew = sorted(n for n, g in growth.items() if g["growth"] > RSS_GROWTH_LIMIT)
    first, last = set(samples[0]["procs"]), set(samples[-1]["procs"])
    return {"lost": lost, "dups": dups, "broken": broken, "sent": results["sent"]["sent"],
            "expected": expected, "rss_rule_applies": applies, "rss_grew": grew,
            "gone": sorted(first - last), "new": sorted(last - first),
            "ok": (lost == dups == broken == 0 and results["sent"]["sent"] == expected
                   and not (applies and grew))}


def progress_line(samples: list[dict[str, Any]]) -> str:
    s = samples[-1]
    rss = ", ".join(f"{n} {v['rss_kib'] / 1024:.1f}" for n, v in s["procs"].items())
    return f"[{s['t']:6.0f}s] RSS MiB: {rss}"


def markdown(results: dict[str, Any]) -> str:
    load, samples, v = results["load"], results["samples"], results["verdict"]
    names = _procs(samples)
    lines_sent = max(1, results["sent"]["sent"])
    out = [f"# Soak: {load['connections']} connections × {load['rate_each']:g} lines/s, "
           f"{load['minutes']:g} min, {load['clients']} clients ({results['when']})", "",
           f"One client resumes with `since=` every {load['resume_every']:g} s "
           f"({results['clients']['resumes']} resumes, closes "
           f"{results['clients']['resumer_closes']}). Load average "
           + " → ".join("/".join(f"{x:.1f}" for x in la) for la in results.get("loadavg", []))
           + " (before → after; other work on the machine).", "",
           "RSS MiB (CPU % over the interval before) of each process, sampled:", "",
           "| t s | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    cpus = {n: [None, *cpu_percent(samples, n)] for n in names}
    for i, s in enumerate(samples):
        cells = []
        for n in names:
            p = s["procs"].get(n)
            c = cpus[n][i]
            cells.append("—" if p is None else f"{p['rss_kib'] / 1024:.1f}"
                         + ("" if c is None else f" ({c:.0f} %)"))
        out.append(f"| {s['t']:.0f} | " + " | ".join(cells) + " |")
    maxlen = results["load"].get("history_maxlen")
    growth = rss_growth(samples, maxlen)
    start = baseline_time(samples, maxlen)
    out += ["", f"Baseline at {start:.0f} s: minute 1, or once the history held its "
            f"{maxlen or 0:,.0f} lines if later.",
            "", "| process | RSS at the baseline, MiB | largest after, MiB | growth | "
            "CPU µs per line sent |", "|---|---:|---:|---:|---:|"]
    for n in names:
        g = growth.get(n)
        have = [s["procs"][n]["cpu_s"] for s in samples if n in s["procs"]]
        per_line = (have[-1] - have[0]) / lines_sent * 1e6 if len(have) > 1 else float("nan")
        out.append(f"| {n} | " + (" | ".join(("—", "—", "—")) if g is None else
                   f"{g['base_kib'] / 1024:.1f} | {g['max_kib'] / 1024:.1f} | "
                   f"{100 * g['growth']:+.1f} %") + f" | {per_line:.1f} |")
    for n in names:
        used = [s["procs"][n]["used_kib"] for s in samples
                if s["t"] >= start and "used_kib" in s["procs"].get(n, {})]
        if used:
            out += ["", f"{n}: its own `used_memory` (the data, without the allocator's "
                    f"overhead) at the baseline: {used[0] / 1024:.1f} MiB, largest "
                    f"{max(used) / 1024:.1f}, last {used[-1] / 1024:.1f}."]
    rule = ("applies" if v["rss_rule_applies"] else
            f"reported only (run < {RSS_RULE_MINUTES:g} min, not failing)")
    out += ["", f"- sent {v['sent']:,} of {v['expected']:,}; per client: lost {v['lost']}, "
            f"duplicated {v['dups']}, broken {v['broken']} (summed over the clients)",
            f"- RSS rule (≤ {100 * RSS_GROWTH_LIMIT:.0f} % after the baseline): {rule}; "
            f"grew past it: {', '.join(v['rss_grew']) or 'none'}",
            f"- processes gone: {', '.join(v['gone']) or 'none'}; new: "
            f"{', '.join(v['new']) or 'none'}",
            f"- verdict: {'PASS' if v['ok'] else 'FAIL'}", ""]
    return "\n".join(out)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = results["samples"]
    fig, (rss_ax, cpu_ax) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    for name in _procs(samples):
        ts = [s["t"] for s in samples if name in s["procs"]]
        rss_ax.plot(ts, [s["procs"][name]["rss_kib"] / 1024 for s in samples
                         if name in s["procs"]], marker=".", label=name)
        pct = cpu_percent(samples, name)
        cpu_ax.plot([s["t"] for s in samples[1:]], [float("nan") if c is None else c
                                                     for c in pct], marker=".", label=name)
    rss_ax.axvline(BASELINE_AFTER, color="grey", linestyle=":", linewidth=1)
    rss_ax.set_ylabel("RSS, MiB")
    rss_ax.set_title("soak: RSS of every process (baseline after the dotted line)")
    rss_ax.legend(fontsize=8)
    cpu_ax.set_ylabel("CPU %")
    cpu_ax.set_xlabel("seconds since the senders started")
    cpu_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
