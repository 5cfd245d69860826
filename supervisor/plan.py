"""The start and stop plan: which children exist, in which order they start
and stop, and how the graceful-stop budget is split between stages (pure).

Start order is redis → web → tcp, so a TCP port never accepts data before
the path to WebSocket clients is up; stop order is the reverse, so every line
a tcp worker read is published while web and Redis are still there. Each
stage gets a share of `--stop-timeout`; the child is told one second less
(its own grace), so that app grace < stage time-out < whole budget: each
layer gives up before the one above it must kill it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

MIN_STAGE_BUDGET = 1.0  # seconds; a stage is never given less than this
CHILD_GRACE_MARGIN = 1.0  # child grace = stage budget - this ...
MIN_CHILD_GRACE = 0.5  # ... but at least this
STAGE_SHARES = {"tcp": 0.5, "web": 0.3, "redis": 0.2}


class Kind(enum.StrEnum):
    REDIS = "redis"
    WEB = "web"
    TCP = "tcp"


START_ORDER: tuple[Kind, ...] = (Kind.REDIS, Kind.WEB, Kind.TCP)
STOP_ORDER: tuple[Kind, ...] = (Kind.TCP, Kind.WEB, Kind.REDIS)


@dataclass(frozen=True)
class StageBudgets:
    """Seconds each stage may take to stop gracefully before SIGKILL."""

    tcp: float
    web: float
    redis: float

    def of(self, kind: Kind) -> float:
        return float(getattr(self, kind.value))

    @property
    def tcp_drain(self) -> float:
        """`tcp_worker --drain-timeout`."""
        return child_grace(self.tcp)

    @property
    def web_shutdown(self) -> float:
        """`web --shutdown-timeout`."""
        return child_grace(self.web)


def child_grace(stage_budget: float) -> float:
    """The time-out a child is given for its own graceful stop."""
    return round(max(MIN_CHILD_GRACE, stage_budget - CHILD_GRACE_MARGIN), 3)


def stage_budgets(stop_timeout: float, embedded_redis: bool = True) -> StageBudgets:
    """Split the whole stop budget: tcp 50 %, web 30 %, redis 20 %.

    Without an embedded Redis its share goes to the other two stages in
    proportion. Each stage gets at least MIN_STAGE_BUDGET, so a tiny
    `--stop-timeout` can be exceeded (documented)."""
    shares = dict(STAGE_SHARES)
    if not embedded_redis:
        shares.pop("redis")
    total = sum(shares.values())
    budgets = {k: max(MIN_STAGE_BUDGET, round(stop_timeout * v / total, 3))
               for k, v in shares.items()}
    return StageBudgets(tcp=budgets["tcp"], web=budgets["web"],
                        redis=budgets.get("redis", 0.0))


def tcp_name(port: int, index: int) -> str:
    return f"tcp.{port}.{index}"


def web_name(index: int) -> str:
    return f"web.{index}"


def initial_names(tcp_ports: tuple[int, ...], tcp_workers: int, web_workers: int,
                  embedded_redis: bool) -> list[str]:
    """Every child name at start, in start order."""
    names = ["redis"] if embedded_redis else []
    names += [web_name(i) for i in range(1, web_workers + 1)]
    names += [tcp_name(p, i) for p in tcp_ports for i in range(1, tcp_workers + 1)]
    return names


def scale_steps(current: int, target: int) -> int:
    """How many workers to add (> 0) or remove (< 0) to reach `target`,
    never going below one worker."""
    return max(1, target) - current


def next_index(existing: list[int]) -> int:
    """Index for a new worker of a port: one past the highest in use."""
    return max(existing, default=0) + 1


def padded_width(names: list[str]) -> int:
    """Width that aligns `name | line` prefixes, as honcho does."""
    return max((len(n) for n in names), default=0)
