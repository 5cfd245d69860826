"""Fixtures: a real redis-server per test session (flushed before each test
that asks for it), and private ones for tests that kill or pause Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from testkit.procs import RedisServer


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(shared_redis: RedisServer) -> str:
    """URL of a running, empty redis-server."""
    client = redis.Redis.from_url(shared_redis.url)
    client.flushall()
    client.close()
    return shared_redis.url


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to kill, pause or restart."""
    server = RedisServer()
    yield server
    server.stop()
