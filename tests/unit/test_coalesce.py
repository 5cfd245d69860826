"""The coalescing window alone, on an injected clock."""

from __future__ import annotations

import random

import pytest

from tcp_worker.coalesce import CoalesceWindow

BOUND = 0.002


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def busy_window(clock: Clock, gap: float = 0.0001, reads: int = 50) -> CoalesceWindow:
    window = CoalesceWindow(BOUND, clock)
    for _ in range(reads):
        clock.now += gap
        window.arrived()
        window.taken()
    return window


def test_a_lone_read_goes_at_once() -> None:
    clock = Clock()
    window = CoalesceWindow(BOUND, clock)
    window.arrived()
    assert window.delay() == 0.0


def test_the_first_read_after_a_quiet_spell_goes_at_once_even_after_a_burst() -> None:
    clock = Clock()
    window = busy_window(clock)
    clock.now += 1.0
    window.arrived()
    assert window.delay() == 0.0


def test_fast_reads_wait_for_the_rest_of_the_bound_from_the_oldest() -> None:
    clock = Clock()
    window = busy_window(clock)
    assert window.busy
    clock.now += 0.0001
    window.arrived()
    first = clock.now
    assert window.delay() == pytest.approx(BOUND)
    clock.now += 0.0005
    window.arrived()
    assert window.delay() == pytest.approx(first + BOUND - clock.now)
    clock.now = first + BOUND + 0.0001
    assert window.delay() == 0.0


def test_slow_reads_never_open_a_window() -> None:
    clock = Clock()
    window = busy_window(clock, gap=BOUND)  # one read per bound: nothing to gather
    clock.now += BOUND / 2
    window.arrived()
    assert not window.busy
    assert window.delay() == 0.0


def test_a_bound_of_zero_never_waits() -> None:
    clock = Clock()
    window = CoalesceWindow(0.0, clock)
    for _ in range(100):
        clock.now += 0.00001
        window.arrived()
        assert window.delay() == 0.0


def test_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError):
        CoalesceWindow(-1.0, Clock())


@pytest.mark.parametrize("seed", range(20))
def test_no_read_is_held_past_the_bound(seed: int) -> None:
    """A publisher driven by the window: at every event (a read, or the end of a
    wait the window asked for) it takes what is pending once `delay()` is 0.
    Every read must be taken within `bound` of its arrival."""
    rng = random.Random(seed)
    clock = Clock()
    window = CoalesceWindow(BOUND, clock)
    arrivals = []
    t = clock.now
    for _ in range(2000):
        # bursts of fast reads, quiet spells, and everything in between
        t += rng.choice((0.00002, 0.0001, 0.0003, 0.001, 0.004, 0.05)) * rng.random()
        arrivals.append(t)
    pending: list[float] = []
    wake_at: float | None = None
    worst = 0.0
    waits = 0
    i = 0
    while i < len(arrivals) or pending:
        next_read = arrivals[i] if i < len(arrivals) else float("inf")
        if wake_at is not None and wake_at <= next_read:
            clock.now, wake_at = wake_at, None
        else:
            clock.now = next_read
            window.arrived()
            pending.append(next_read)
            i += 1
        if wake_at is None and pending:
            delay = window.delay()
            if delay > 0:
                wake_at = clock.now + delay
                waits += 1
            else:
                worst = max(worst, clock.now - pending[0])
                pending.clear()
                window.taken()
    assert waits > 0  # the window did open
    assert worst <= BOUND + 1e-9
