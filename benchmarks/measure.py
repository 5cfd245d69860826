"""Measuring helpers for the benchmark: process memory and CPU from /proc,
process trees, percentiles, free ports and the file-descriptor limit.

Everything reads /proc directly (Linux only) so that no measuring library
adds its own cost to the processes being measured."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards `wanted`, never past the hard
    limit; children inherit it. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def rss_kib(pid: int) -> int:
    """Resident set size of one process in KiB (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rpartition(")")[2].split()[1])


def descendants(root: int) -> list[int]:
    """Every live process below `root` (children, grandchildren...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parents.setdefault(_ppid(int(entry)), []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        kids = parents.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found


def matching(root: int, needles: Sequence[str]) -> list[int]:
    """Descendants of `root` (and root itself) whose command line contains
    one of `needles`."""
    return [pid for pid in [root, *descendants(root)]
            if any(n in cmdline(pid) for n in needles)]


def total_rss_kib(pids: Iterable[int]) -> int:
    return sum(rss_kib(p) for p in pids)


def total_cpu(pids: Iterable[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)


def settled(read: Callable[[], int], timeout: float = 5.0, window: float = 0.5,
            tolerance: int = 64) -> int:
    """Read a value (RSS) until it stops moving by more than `tolerance`
    over `window` seconds, or `timeout` passes; return the last value."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(window)
        now = read()
        if abs(now - last) <= tolerance:
            return now
        last = now
    return last


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def wait_for(cond: Callable[[], object], timeout: float, what: str,
             interval: float = 0.05) -> None:
    """Poll `cond` until true; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
