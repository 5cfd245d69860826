"""The stop plan, the exit classification and the restart back-off (pure)."""

from __future__ import annotations

import random
import signal

import pytest

from supervisor.child import describe_exit
from supervisor.control import format_status
from supervisor.plan import (
    START_ORDER,
    STOP_ORDER,
    Kind,
    child_grace,
    initial_names,
    next_index,
    padded_width,
    scale_steps,
    stage_budgets,
)
from supervisor.slot import BACKOFF_CAP, BACKOFF_RESET_AFTER
from tcpws.backoff import Backoff


def test_start_order_is_redis_web_tcp_and_stop_order_its_reverse() -> None:
    assert START_ORDER == (Kind.REDIS, Kind.WEB, Kind.TCP)
    assert tuple(reversed(START_ORDER)) == STOP_ORDER


def test_default_budget_split_and_child_graces() -> None:
    b = stage_budgets(10.0)
    assert (b.tcp, b.web, b.redis) == (5.0, 3.0, 2.0)
    assert b.tcp_drain == 4.0
    assert b.web_shutdown == 2.0
    assert b.of(Kind.WEB) == 3.0


@pytest.mark.parametrize("total", [0.1, 1.0, 2.5, 10.0, 30.0, 600.0])
def test_child_grace_is_below_its_stage_budget(total: float) -> None:
    b = stage_budgets(total)
    for stage in (b.tcp, b.web, b.redis):
        assert stage >= 1.0
        assert 0.5 <= child_grace(stage) < stage
    if total >= 5.0:  # the minimum per stage only matters for tiny budgets
        assert b.tcp + b.web + b.redis == pytest.approx(total)


def test_without_embedded_redis_its_share_goes_to_the_others() -> None:
    b = stage_budgets(10.0, embedded_redis=False)
    assert b.redis == 0.0
    assert b.tcp + b.web == pytest.approx(10.0)
    assert b.tcp > b.web


def test_initial_names_in_start_order() -> None:
    assert initial_names((8001, 8002), 2, 1, True) == [
        "redis", "web.1", "tcp.8001.1", "tcp.8001.2", "tcp.8002.1", "tcp.8002.2"]
    assert initial_names((8001,), 1, 2, False) == ["web.1", "web.2", "tcp.8001.1"]
    assert padded_width(["redis", "tcp.8001.1"]) == len("tcp.8001.1")


def test_scaling_never_goes_below_one() -> None:
    assert scale_steps(1, 3) == 2
    assert scale_steps(3, 2) == -1
    assert scale_steps(1, 0) == 0
    assert scale_steps(2, -5) == -1
    assert next_index([]) == 1
    assert next_index([1, 3]) == 4


@pytest.mark.parametrize(("kind", "rc", "sent", "clean", "text"), [
    ("tcp", 0, set(), True, "exited 0"),
    ("web", -signal.SIGTERM, {signal.SIGTERM}, True, "stopped by SIGTERM"),
    ("web", -signal.SIGHUP, {signal.SIGHUP}, True, "stopped by SIGHUP"),
    ("web", -signal.SIGTERM, set(), False, "killed by SIGTERM"),
    ("tcp", -signal.SIGKILL, set(), False, "killed by SIGKILL (out of memory?)"),
    ("tcp", 1, {signal.SIGTERM}, False, "exited 1: lines could not be published"),
    ("web", 1, set(), False, "exited 1"),
    ("tcp", 2, set(), False, "exited 2: bad configuration"),
    ("tcp", -signal.SIGSEGV, {signal.SIGTERM}, False, "killed by SIGSEGV"),
])
def test_exit_classification(kind: str, rc: int, sent: set[int], clean: bool,
                             text: str) -> None:
    report = describe_exit("x.1", kind, rc, frozenset(sent))
    assert (report.clean, report.reason) == (clean, text)
    assert str(report) == f"x.1 {text}"


def test_sigkill_we_sent_names_the_time_out() -> None:
    sent = frozenset({signal.SIGTERM, signal.SIGKILL})
    report = describe_exit("web.1", "web", -signal.SIGKILL, sent, killed_after=3.0)
    assert not report.clean
    assert str(report) == "web.1 killed after 3.0 s stop time-out"
    forced = describe_exit("web.1", "web", -signal.SIGKILL, sent, forced=True)
    assert forced.reason == "killed by a fast stop"


def test_restart_backoff_as_the_supervisor_uses_it() -> None:
    backoff = Backoff(cap=BACKOFF_CAP, reset_after=BACKOFF_RESET_AFTER, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    assert delays[0] == 0.0  # first restart at once
    assert all(0 < d <= BACKOFF_CAP for d in delays[1:])
    assert delays[-1] >= BACKOFF_CAP / 2  # grown to the cap (equal jitter)
    backoff.succeeded(ran_for=1.0)  # a short run does not reset
    assert backoff.next_delay() > 0
    backoff.succeeded(ran_for=BACKOFF_RESET_AFTER)  # a stable run does
    assert backoff.next_delay() == 0.0


def test_status_table() -> None:
    text = format_status([
        {"name": "redis", "pid": 10, "state": "ready", "uptime": 1.25, "restarts": 0,
         "last_exit": ""},
        {"name": "tcp.8001.1", "pid": None, "state": "backoff", "uptime": 0.0,
         "restarts": 3, "last_exit": "exited 2: bad configuration"},
    ])
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "PID", "STATE", "UPTIME", "RESTARTS", "LAST", "EXIT"]
    assert lines[1].split() == ["redis", "10", "ready", "1.2s", "0", "-"]
    assert lines[2].split()[:5] == ["tcp.8001.1", "-", "backoff", "0.0s", "3"]
    assert lines[2].endswith("exited 2: bad configuration")
