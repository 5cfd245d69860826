"""The adaptive coalescing window of the publisher (pure: a clock is injected).

At device-like loads (thousands of connections, each sending a line now and
then) nothing batches by itself: every line would pay its own script call,
live message and frame to every client. The window trades a bounded delay
for far fewer calls, the way Kafka's `linger.ms` and TCP autocorking do:

* a read that comes after a quiet spell (no read for longer than `bound`)
  is sent at once: a lone line is never taxed;
* only while the arrival rate says more reads are coming (the average gap
  between reads, an exponentially weighted mean, is under
  `bound / MIN_EXPECTED`) does the publisher wait, gathering the reads of
  every connection into one call;
* the wait is measured from the oldest pending read, so no line is held past
  `bound` by the window (a call already in flight may add its own time).

A bound of 0 turns the window off (every batch is sent as soon as the
previous call returns)."""

from __future__ import annotations

from collections.abc import Callable

MIN_EXPECTED = 4.0  # reads expected within one bound before a window is worth opening
GAP_WEIGHT = 0.125  # weight of the newest gap in the running mean
NO_GAP_YET = -1.0  # mean_gap until two reads have come: not busy


class CoalesceWindow:
    """When the next call may go; see the module doc."""

    __slots__ = ("_clock", "_first", "_first_after_quiet", "_last", "bound", "mean_gap")

    def __init__(self, bound: float, clock: Callable[[], float]) -> None:
        if bound < 0:
            raise ValueError("bound must be >= 0")
        self.bound = bound
        self._clock = clock
        self._first: float | None = None  # arrival of the oldest read not yet taken
        self._first_after_quiet = False  # ... and it came after a gap longer than bound
        self._last: float | None = None  # arrival of the newest read
        self.mean_gap = NO_GAP_YET

    def arrived(self) -> float:
        """A read with lines to publish came in (call once per read: this
        runs for every line at device-like loads, hence the plain code).
        Returns the clock's reading, for the caller to reuse."""
        now = self._clock()
        last = self._last
        self._last = now
        if last is None:
            self._first, self._first_after_quiet = now, True
            return now
        gap = now - last
        mean = self.mean_gap
        self.mean_gap = gap if mean < 0 else mean + GAP_WEIGHT * (gap - mean)
        if self._first is None:
            self._first, self._first_after_quiet = now, gap > self.bound
        return now

    @property
    def busy(self) -> bool:
        """Whether reads come fast enough for a window to gather several."""
        return self.bound > 0 and 0 <= self.mean_gap * MIN_EXPECTED < self.bound

    def delay(self) -> float:
        """Seconds to wait before taking what is pending (0: take it now)."""
        if self._first is None or self._first_after_quiet or not self.busy:
            return 0.0
        return max(0.0, self._first + self.bound - self._clock())

    def taken(self) -> None:
        """Everything pending went into a call."""
        self._first = None
