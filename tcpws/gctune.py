"""Garbage-collector settings for the long-running processes.

With thousands of open connections (each a protocol object, a transport,
buffers) the cyclic collector's generation scans showed as a fifth of a tcp
worker's CPU at device-like loads: the objects it keeps walking are
long-lived and almost never part of a cycle (reference counting frees the
per-line garbage). So: whatever start-up made is frozen out of every scan,
and the young generation is collected less often, which makes the older,
larger scans rarer in proportion."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # allocations between young collections (default 700)


def tune_gc() -> None:
    """Call once, after the imports and the start-up objects exist."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
