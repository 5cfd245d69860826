"""Measuring helpers of the benchmark itself: the file-descriptor limit, a
settled reading, percentiles. What /proc says about a process lives in
`testkit.procfs`, shared with the tests."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence


def raise_nofile(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards `wanted`, never past the hard
    limit; children inherit it. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


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

