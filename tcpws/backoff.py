"""Exponential back-off with jitter (pure): retrying at once floods CPU and
logs, a fixed delay leaves a service down long after a short blip.

Used for restarting children (supervisor) and for reconnecting to Redis
(tcp_worker, web). The first retry is immediate; then base * 2**n, capped,
with "equal jitter" (between half and all of the delay); the count resets
after `reset_after` seconds of stable running."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    reset_after: float = 10.0
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """Record one more failure and return how long to wait before retrying."""
        self.failures += 1
        n = self.failures - 1  # the first retry is immediate
        if n <= 0:
            return 0.0
        delay = float(min(self.cap, self.base * 2.0 ** (n - 1)))
        return delay / 2 + self.rng.uniform(0, delay / 2)

    def succeeded(self, ran_for: float | None = None) -> None:
        """Reset after a success (or after `ran_for` >= reset_after seconds up)."""
        if ran_for is None or ran_for >= self.reset_after:
            self.failures = 0
