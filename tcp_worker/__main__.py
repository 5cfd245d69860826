"""`python -m tcp_worker`: one TCP ingestion worker.

Exit codes: 0 after a clean drain (every line read is stored), 1 when lines
read could not be published (the log says how many), 2 for bad flags or a
port that cannot be bound. See docs/tcp_worker.md."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import secrets
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tcpws import cluster
from tcpws.cli import check_only
from tcpws.gctune import tune_gc
from tcpws.heartbeat import remove_heartbeat, write_heartbeat
from tcpws.lifecycle import bind_listener, die_with_parent, inherited_socket, notify_ready
from tcpws.logs import setup_logging
from tcpws.protocol import HEARTBEAT_INTERVAL
from tcpws.redisconn import connect, redact_url

from .cluster_call import ClusterPublishCall
from .config import Config, from_args
from .framings.scan import log_implementation
from .publisher import Publisher
from .server import TcpServer
from .stats import WorkerStats

log = logging.getLogger("tcp_worker")

FLUSH_GRACE = 0.5  # after the drain time-out, this long again to store what was read
HURRY_FLUSH = 1.0  # after a second signal: this long to store what was read
CLOSE_GRACE = 0.5  # for the final acks to leave before sockets are cut


class Worker:
    """Start-up, the running state and the shutdown story of one worker."""

    def __init__(self, config: Config, sock: socket.socket) -> None:
        self.config = config
        self.sock = sock
        self.should_exit = asyncio.Event()
        self.force_exit = asyncio.Event()
        self.signal_name = ""
        self.crashed = False
        self.stats = WorkerStats(port=int(sock.getsockname()[1]), host=config.hostname,
                                 started=time.time())
        # Never reused, even by a restart of this worker: see Publisher.
        publisher_id = f"{config.heartbeat_name}:{os.getpid()}:{secrets.token_hex(6)}"
        store: dict[str, Any] = {}
        if config.redis_cluster:
            self.client: aioredis.Redis = cluster.connect(  # type: ignore[assignment]
                config.redis_cluster, client_name=config.client_name)
            store = {"script": cluster.CLUSTER_PUBLISH_SCRIPT, "call": ClusterPublishCall(
                self.client, publisher_id=publisher_id, maxlen=config.history_maxlen,  # type: ignore[arg-type]
                replicas=config.ack_replicas, keys=cluster.port_keys(self.stats.port))}
        else:
            self.client = connect(config.redis_url, client_name=config.client_name)
        self.publisher = Publisher(
            self.client, publisher_id=publisher_id, redis_url=config.redis_address,
            port=self.stats.port, maxlen=config.history_maxlen,
            max_pending_bytes=config.max_pending_bytes, ack=config.ack, stats=self.stats,
            set_paused=lambda paused: self.server.set_paused(paused),
            coalesce=config.coalesce, ack_replicas=config.ack_replicas, **store)
        self.server = TcpServer(config, self.stats, self.publisher)

    def _on_signal(self, sig: signal.Signals) -> None:
        """Only sets flags: the first signal asks for a drain, the next one hurries it."""
        if self.should_exit.is_set():
            self.force_exit.set()
        self.signal_name = sig.name
        self.should_exit.set()

    def _watched(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task that must run until cancelled: if it dies, so do we (exit 1),
        rather than reading lines that nobody publishes: a dead task is not
        noticed by anyone else."""
        task = asyncio.create_task(work, name=name)

        def done(task: asyncio.Task[None]) -> None:
            if task.cancelled() or task.exception() is None:
                return
            log.critical("%s task died; stopping", name, exc_info=task.exception())
            self.crashed = True
            self.should_exit.set()
            self.force_exit.set()

        task.add_done_callback(done)
        return task

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        tasks: list[asyncio.Task[None]] = []
        try:
            if not await self.publisher.wait_for_redis(self.should_exit):
                log.info("stopped by %s before Redis was reachable; nothing was read",
                         self.signal_name)
                return 0
            await self.server.start(self.sock)
            tasks.append(self._watched(self.publisher.run(), "publisher"))
            if self.config.idle_timeout > 0:
                tasks.append(self._watched(self.server.sweep_idle(), "idle sweeper"))
            self.stats.state = "running"
            tune_gc()
            await self._beat()
            tasks.append(self._watched(self._heartbeat_loop(), "heartbeat"))
            notify_ready(self.config.notify_fd)
            host, port = self.sock.getsockname()[:2]
            log.info("%s ready on %s:%d (Redis %s, ack %s, loop %s)", self.config.name, host,
                     port, redact_url(self.config.redis_address),
                     "on" if self.config.ack else "off",
                     type(loop).__module__.split(".")[0])
            if self.config.framing != "newline":
                log_implementation()  # which scan the length-prefixed framers use
            await self.should_exit.wait()
            return await self.shutdown()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.server.abort_all()
            await self._goodbye()
            self.sock.close()

    async def shutdown(self) -> int:
        """Stop accepting, drain connections, store what was read, ack it."""
        start = time.monotonic()
        deadline = start + self.config.drain_timeout
        self.stats.state = "draining"
        log.info("%s: draining %d connection(s), up to %.1f s", self.signal_name,
                 len(self.server.connections), self.config.drain_timeout)
        await self.server.drain(deadline, self.force_exit)
        if self.force_exit.is_set():
            log.warning("second signal: not waiting for connections, storing what was read")
            flush_until = time.monotonic() + HURRY_FLUSH
        else:
            flush_until = max(deadline, time.monotonic() + FLUSH_GRACE)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.publisher.wait_flushed(),
                                   max(0.0, flush_until - time.monotonic()))
        lost = self.stats.unpublished
        if not lost:
            # Final acks are written; let the sockets close with them.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), CLOSE_GRACE)
        self.stats.state = "stopped"
        if lost:
            log.error("%d lines could not be published to Redis at %s", lost,
                      redact_url(self.config.redis_address))
            return 1
        if self.crashed:
            return 1
        log.info("stopped cleanly in %.1f s: %d lines stored, %d dropped by rule",
                 time.monotonic() - start, self.stats.lines,
                 self.stats.dropped_long + self.stats.dropped_empty + self.stats.dropped_tail)
        return 0

    async def _beat(self) -> None:
        try:
            await write_heartbeat(self.client, self.config.heartbeat_name,
                                  self.stats.heartbeat_fields())
        except (RedisError, OSError) as exc:
            # The publisher logs outages; a missed heartbeat is only a gap.
            log.debug("heartbeat not written: %s", exc)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            await self._beat()

    async def _goodbye(self) -> None:
        """Best effort: remove our heartbeat (unless Redis is known to be
        down: no time to waste inside the stop budget), close the client."""
        if not self.publisher.redis_down:
            try:
                await asyncio.wait_for(
                    remove_heartbeat(self.client, self.config.heartbeat_name), 0.5)
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("heartbeat not removed: %s", exc)
        with contextlib.suppress(RedisError, OSError):
            await self.publisher.close()
        with contextlib.suppress(RedisError, OSError):
            await self.client.aclose()


def open_socket(config: Config) -> socket.socket:
    """The inherited listening socket (supervisor) or one we bind (standalone)."""
    if config.listen_fd is not None:
        try:
            return inherited_socket(config.listen_fd)
        except OSError as exc:
            raise OSError(exc.errno, f"TCPWS_LISTEN_FD={config.listen_fd} is not a usable "
                                     f"socket: {exc.strerror}") from None
    return bind_listener(config.host, config.port)


def raise_fd_limit(connections: int) -> None:
    """Make room for --max-connections sockets (the soft limit is often 1024)."""
    want = connections + 64  # listener, Redis, logs, the rejected-while-full
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit to %d: %s", new, exc)
        if new < want:
            log.warning("open-files limit %d is below --max-connections %d + 64", new,
                        connections)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    config = from_args(sys.argv[1:] if argv is None else argv,
                       os.environ if environ is None else environ)
    if check_only(os.environ):
        return 0
    setup_logging(config.name, config.log_level, config.log_format)
    die_with_parent(config.parent_pid)
    raise_fd_limit(config.max_connections)
    try:
        sock = open_socket(config)
    except OSError as exc:
        sys.stderr.write(f"tcp_worker: error: {exc.strerror or exc}\n")
        return 2
    return run_loop(Worker(config, sock).run())


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """uvloop when installed (it comes with uvicorn[standard]): about 10 %
    less CPU per line than the default loop (docs/benchmark.md finding 4).
    With TLS too: the TLS itself is asyncio's (tcp_worker.tls.serve_tls)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


if __name__ == "__main__":
    sys.exit(main())
