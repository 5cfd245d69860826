"""Fixtures that start the real processes under test: `start_worker`
(`python -m tcp_worker`), `start_web` (`python -m web`), `publisher`
(batches published exactly as a tcp worker publishes them) and `cluster`
(a real Redis 7 cluster of 3 masters and 3 replicas)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from testkit.cluster import REDIS7_CLI, REDIS7_SERVER, RedisCluster
from testkit.procs import Proc, free_port, python_module
from tests.support.certs import make_certs
from tests.support.tcp_worker import Dialer, StartWorker
from tests.support.tools import require_tool
from tests.support.web import Publisher, StartWeb, Web


@pytest.fixture
def start_worker() -> Iterator[StartWorker]:
    """Start `python -m tcp_worker` on a free port; wait for its ready line."""
    procs: list[Proc] = []

    def start(redis_url: str, *args: str, ready: bool = True,
              port: int | None = None) -> tuple[Proc, int]:
        port = port or free_port()
        proc = Proc(python_module("tcp_worker", "--port", str(port), *args),
                    env={"REDIS_URL": redis_url, "TCPWS_NAME": f"tcp.{port}"},
                    name=f"tcp.{port}")
        procs.append(proc)
        if ready:
            proc.wait_for_output(r"ready on ")
        return proc, port

    yield start
    for proc in procs:
        proc.stop(timeout=10)


@pytest.fixture(params=["plain", "tls"])
def dialer(request: pytest.FixtureRequest, tmp_path: Path) -> Dialer:
    """A test that takes it runs twice: over plain TCP and over TLS."""
    if request.param == "plain":
        return Dialer()
    certs = make_certs(tmp_path)
    return Dialer(("--tcp-tls-cert", certs.cert_file, "--tcp-tls-key", certs.key_file),
                  certs.client_context())


REDIS7_INSTALL = "scripts/install-redis7 (make test runs it as root)"


def _cluster(spare_replica: bool) -> Iterator[RedisCluster]:
    require_tool(str(REDIS7_SERVER), "redis 7 server", REDIS7_INSTALL)
    require_tool(str(REDIS7_CLI), "redis 7 cli", REDIS7_INSTALL)
    c = RedisCluster(spare_replica=spare_replica)
    yield c
    c.stop()


@pytest.fixture
def cluster() -> Iterator[RedisCluster]:
    """A Redis 7 cluster on 127.0.0.1 (skips loudly, or fails under $CI,
    without the Redis 7 install)."""
    yield from _cluster(False)


@pytest.fixture
def spare_cluster() -> Iterator[RedisCluster]:
    """The same with a 7th node, a spare replica that Redis migrates to a
    master left without one by a failover."""
    yield from _cluster(True)


@pytest.fixture
def start_web() -> Iterator[StartWeb]:
    started: list[Web] = []

    def start(redis_url: str, *args: str, ready: bool = True) -> Web:
        web = Web(redis_url, *args)
        started.append(web)
        return web.wait_ready() if ready else web

    yield start
    for web in started:
        web.proc.stop(timeout=10)


@pytest.fixture
async def publisher(redis_url: str) -> AsyncIterator[Publisher]:
    pub = Publisher(redis_url)
    yield pub
    await pub.client.aclose()
