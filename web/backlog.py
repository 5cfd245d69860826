"""When is a WebSocket client too slow? Pure logic, no I/O.

A client's backlog is every byte handed to it and not yet sent: its queue
plus what its sender has taken but not yet written. A healthy client that
the machine merely did not schedule for a moment (0.1 s under flat-out load
fills megabytes) must not be cut, and a client that reads nothing must not
hold memory without bound. So a client is too slow when

  * its backlog has stayed above the soft bound (`--client-queue-bytes`)
    continuously for longer than the grace (`--slow-client-grace`) *and* it
    took less than one soft bound's worth of bytes during that grace (a
    client that is reading, only behind a burst, gets another grace), or
  * its backlog passes the hard bound (HARD_FACTOR x the soft bound) at any
    moment: a client that reads, but slower than lines arrive, ends here, or
  * new lines arrive while one frame has been waiting for its socket for
    longer than the grace: a client that stopped reading, whatever its
    backlog (the kernel's buffers may have soaked up most of it).

A grace of 0 is the strict rule: too slow as soon as the soft bound is
passed. Queued batches are shared between clients (one `Batch` object for
all of them), so the memory that stalled clients hold is about the largest
backlog, not the sum of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

HARD_FACTOR = 32  # 256 MiB at the default 8 MiB: a 3M-line burst to 1 client fits


@dataclass(frozen=True)
class SlowClientRule:
    soft_bytes: int
    grace: float
    hard_factor: int = HARD_FACTOR

    @property
    def hard_bytes(self) -> int:
        return self.soft_bytes * self.hard_factor

    def send_stalled(self, started: float, now: float) -> bool:
        """A frame handed to the socket at `started` is still not written at
        `now`, longer than the grace: a reader that stopped (a healthy one
        takes a frame in milliseconds, even on a busy machine)."""
        return 0 < self.grace < now - started


class Verdict(Enum):
    OK = "ok"
    CROSSED = "crossed"  # just went over the soft bound: the grace starts now
    TOO_SLOW = "too slow"


class Backlog:
    """Bytes handed to one client and not yet sent, judged by a rule.
    `now` is any monotonic clock (the event loop's time in the app)."""

    __slots__ = ("bytes", "over_since", "progress", "rule")

    def __init__(self, rule: SlowClientRule) -> None:
        self.rule = rule
        self.bytes = 0
        self.over_since: float | None = None
        self.progress = 0  # bytes sent since `over_since`

    def add(self, size: int, now: float) -> Verdict:
        self.bytes += size
        if self.bytes > self.rule.hard_bytes:
            return Verdict.TOO_SLOW
        if self.bytes <= self.rule.soft_bytes or self.over_since is not None:
            return self.judge(now)
        self.over_since, self.progress = now, 0
        return Verdict.TOO_SLOW if self.rule.grace <= 0 else Verdict.CROSSED

    def sent(self, size: int) -> bool:
        """`size` bytes left for the socket; True if that ended an over-bound
        period (the grace timer can go)."""
        self.bytes = max(0, self.bytes - size)
        if self.over_since is None:
            return False
        if self.bytes <= self.rule.soft_bytes:
            self.over_since = None
            return True
        self.progress += size
        return False

    def clear(self) -> None:
        self.bytes = 0
        self.over_since = None

    def grace_left(self, now: float) -> float | None:
        """Seconds until the client counts as too slow if nothing is sent;
        None while under the soft bound. A grace that ran out while the
        client took at least a soft bound's worth is renewed from `now`."""
        if self.over_since is None:
            return None
        left = self.over_since + self.rule.grace - now
        if left <= 0 < self.rule.grace and self.progress >= self.rule.soft_bytes:
            self.over_since, self.progress, left = now, 0, self.rule.grace
        return left

    def judge(self, now: float) -> Verdict:
        left = self.grace_left(now)
        if left is None:
            return Verdict.OK
        return Verdict.TOO_SLOW if left <= 0 else Verdict.OK
