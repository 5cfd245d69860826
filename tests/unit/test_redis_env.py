"""The embedded Redis starts without glibc's malloc cache (flat RSS under a
trimmed, refilled history), unless the operator set it."""

from __future__ import annotations

import socket
from pathlib import Path

from supervisor.config import from_args
from supervisor.plan import Kind, StageBudgets
from supervisor.redis_stage import EmbeddedRedis
from supervisor.sockets import Listeners
from supervisor.specs import SpecFactory
from tcpws.redis_server import MALLOC_TUNABLE, redis_env


def test_the_tunable_is_added_and_an_operators_own_is_kept() -> None:
    assert redis_env({"PATH": "/bin"}) == {"PATH": "/bin", "GLIBC_TUNABLES": MALLOC_TUNABLE}
    assert redis_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})["GLIBC_TUNABLES"] == (
        "glibc.malloc.arena_max=2:" + MALLOC_TUNABLE)
    mine = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=7"}
    assert redis_env(mine) == mine


def test_the_supervisors_redis_gets_it(tmp_path: Path) -> None:
    config = from_args([], {"PATH": "/bin"})
    redis = EmbeddedRedis(run_dir=str(tmp_path), argv=("redis-server",),
                          url=f"unix://{tmp_path}/redis.sock?db=0")
    with socket.socket() as http, socket.socket() as tcp:
        specs = SpecFactory(config, Listeners(http=http, tcp={8001: tcp}), redis,
                            StageBudgets(3.0, 3.0, 3.0))
        env = specs.spec(Kind.REDIS, "redis").env
    assert env["GLIBC_TUNABLES"] == MALLOC_TUNABLE and env["PATH"] == "/bin"
