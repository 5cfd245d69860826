"""The Procfile's `redis` entry: `python -m tcpws.procfile_redis`.

Runs the same redis-server as the supervisor's embedded one, on ``$PORT``
and on loopback only, as a child whose output it forwards.

Why a wrapper and not `exec redis-server`: honcho sends SIGTERM to every
process at once, and SIGKILLs what is left 5 s after the first one exits. A
bare redis-server would be gone while the tcp workers are still publishing
the lines they read. So on SIGTERM/SIGINT this wrapper keeps Redis serving
until no tcp worker is connected any more (clients named ``tcpws-tcp:*``,
seen in CLIENT LIST) or a grace period has passed, and only then stops Redis
and exits 0, well inside honcho's 5 s.

It also listens on a Unix socket at a path relative to the project
(``--socket``, default ``.tcpws/honcho/redis.sock``), which is where the
Procfile's web and tcp_worker entries look when no ``REDIS_URL`` is set:
``honcho start -p BASE`` moves every TCP port, a path in the project does not
move, so nothing has to be edited for any base.

redis-server runs in its own process group, so honcho's group-wide SIGTERM
reaches only this wrapper; it gets PDEATHSIG=KILL (through `setpriv`), so a
SIGKILLed wrapper leaves no Redis behind holding the port.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import IO

import redis
import redis.exceptions

from tcpws import cli
from tcpws.logs import setup_logging
from tcpws.redis_server import (
    RedisNotFound,
    dying_with_parent,
    find_redis_server,
    redis_argv,
    redis_env,
)

log = logging.getLogger("tcpws.redis")

PROG = "python -m tcpws.procfile_redis"
DEFAULT_PORT = 6379
DEFAULT_GRACE = 3.5
DEFAULT_SOCKET = ".tcpws/honcho/redis.sock"  # the Procfile's entries look here too
POLL_INTERVAL = 0.05
START_TIMEOUT = 10.0
STOP_TIMEOUT = 1.0


@dataclass(frozen=True)
class RedisEntryConfig:
    port: int
    grace: float
    log_level: str
    socket: str = ""

    @classmethod
    def from_args(cls, argv: Sequence[str], environ: Mapping[str, str]) -> RedisEntryConfig:
        """Flags over environment over defaults; anything bad is one line on
        stderr and exit 2."""
        parser = cli.OneLineParser(
            prog=PROG,
            description="Embedded redis-server for the Procfile: on SIGTERM it keeps "
                        "serving until the tcp workers have disconnected.")
        parser.add_argument("--port", type=cli.fixed_port,
                            default=environ.get("PORT", str(DEFAULT_PORT)),
                            help="port on 127.0.0.1 (default: $PORT, else 6379)")
        parser.add_argument("--grace", type=cli.seconds,
                            default=environ.get("TCPWS_REDIS_GRACE", str(DEFAULT_GRACE)),
                            help="longest wait for tcp workers to disconnect after SIGTERM "
                                 "(default: $TCPWS_REDIS_GRACE, else 3.5 s; keep it < 5 s, "
                                 "honcho's kill time-out)")
        parser.add_argument("--log-level", type=cli.log_level,
                            default=environ.get("TCPWS_LOG_LEVEL", "info"),
                            help=f"{', '.join(cli.LOG_LEVELS)} "
                                 "(default: $TCPWS_LOG_LEVEL, else info)")
        parser.add_argument("--socket", default=environ.get("TCPWS_REDIS_SOCKET", DEFAULT_SOCKET),
                            help="Unix socket, relative to the working directory, where the "
                                 "Procfile's entries find Redis; '' for none "
                                 f"(default: $TCPWS_REDIS_SOCKET, else {DEFAULT_SOCKET})")
        args = parser.parse_args(list(argv))
        return cls(port=args.port, grace=args.grace, log_level=args.log_level,
                   socket=args.socket)


class StopFlag:
    """Set by SIGTERM/SIGINT; a second signal also sets `hurry` (skip waiting).

    Plain booleans, read by loops that sleep POLL_INTERVAL at a time: a
    handler that set a `threading.Event` the main thread was waiting on could
    deadlock on the Event's own (non-reentrant) lock, the signal having
    arrived while `wait()` held it; honcho then SIGKILLed us 5 s later."""

    def __init__(self) -> None:
        self.should_exit = False
        self.hurry = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.hurry = True
        self.should_exit = True


def _forward(stream: IO[bytes]) -> None:
    """Copy redis-server's output to ours, line by line; always drained, or
    redis-server blocks once the pipe buffer is full."""
    for raw in stream:
        sys.stdout.write(raw.decode("utf-8", "replace"))
        sys.stdout.flush()


class SocketInUse(RuntimeError):
    """Another redis entry (another honcho run of this checkout) serves the socket."""


def prepare_socket(path: str) -> str | None:
    """The absolute path for redis-server's `--unixsocket` (its directory
    made, mode 0700), or None for no socket. redis-server unlinks whatever is
    at the path, so a live socket of another run is refused first."""
    if not path:
        return None
    full = os.path.abspath(path)
    os.makedirs(os.path.dirname(full), mode=0o700, exist_ok=True)
    if os.path.exists(full):
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(full)
            except OSError:
                return full  # left by a run that was killed: redis-server replaces it
        raise SocketInUse(f"{path} is served by another running redis entry "
                          "(another `honcho start` in this directory?)")
    return full


def spawn_redis(port: int, unixsocket: str | None = None) -> subprocess.Popen[bytes]:
    """Start redis-server in its own session, dying with us when possible."""
    argv = dying_with_parent(redis_argv(find_redis_server(), port=port, bind="127.0.0.1",
                                        unixsocket=unixsocket))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env=redis_env(dict(os.environ)))
    assert proc.stdout is not None
    threading.Thread(target=_forward, args=(proc.stdout,), daemon=True).start()
    return proc


def tcp_workers_connected(client: redis.Redis) -> int | None:
    """How many tcp workers are connected; None when Redis does not answer."""
    try:
        clients = client.client_list()
    except redis.exceptions.RedisError:
        return None
    return sum(1 for c in clients if str(c.get("name", "")).startswith(cli.TCP_CLIENT_PREFIX))


def wait_ready(proc: subprocess.Popen[bytes], client: redis.Redis, stop: StopFlag) -> bool:
    """True once *our* redis-server answers: PING alone could be answered by
    another server already holding the port, while ours fails to bind."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None and not stop.should_exit:
        try:
            if int(client.info("server").get("process_id", -1)) == proc.pid:
                return True
        except redis.exceptions.RedisError:
            pass
        time.sleep(POLL_INTERVAL)
    return False


def wait_for_workers(client: redis.Redis, proc: subprocess.Popen[bytes], grace: float,
                     stop: StopFlag) -> None:
    """Keep Redis up until no tcp worker is connected, the grace passes, or a
    second signal says hurry."""
    deadline = time.monotonic() + grace
    announced = False
    while proc.poll() is None and not stop.hurry:
        count = tcp_workers_connected(client)
        if not count:
            log.info("no tcp worker connected: stopping redis")
            return
        if not announced:
            log.info("waiting up to %.1fs for %d tcp worker(s) to disconnect", grace, count)
            announced = True
        if time.monotonic() >= deadline:
            log.warning("grace of %.1fs passed with %d tcp worker(s) still connected: "
                        "stopping redis anyway", grace, count)
            return
        time.sleep(POLL_INTERVAL)


def stop_redis(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM redis-server (no save configured, so it exits at once); SIGKILL
    it if it does not. Returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("redis-server did not stop within %.1fs: SIGKILL", STOP_TIMEOUT)
        proc.kill()
        return proc.wait(timeout=STOP_TIMEOUT)


def run(config: RedisEntryConfig) -> int:
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.handle)
    signal.signal(signal.SIGINT, stop.handle)
    try:
        unixsocket = prepare_socket(config.socket)
        proc = spawn_redis(config.port, unixsocket)
    except (RedisNotFound, SocketInUse, OSError) as exc:
        log.error("%s", exc)
        return 2
    client = redis.Redis(host="127.0.0.1", port=config.port, socket_timeout=1.0,
                         socket_connect_timeout=1.0, client_name="tcpws-redis-entry")
    try:
        if not wait_ready(proc, client, stop):
            if stop.should_exit:
                stop_redis(proc)
                return 0
            log.error("redis-server did not start on 127.0.0.1:%d (exit code %s; its output "
                      "above says why)",
                      config.port, proc.poll())
            stop_redis(proc)
            return 1
        log.info("redis ready on 127.0.0.1:%d%s (redis-server pid %d)", config.port,
                 f" and unix://{unixsocket}" if unixsocket else "", proc.pid)
        while not stop.should_exit:
            time.sleep(POLL_INTERVAL)
            if proc.poll() is not None:
                log.error("redis-server exited unexpectedly with code %s", proc.returncode)
                return 1
        wait_for_workers(client, proc, config.grace, stop)
    finally:
        client.close()
        rc = stop_redis(proc)
    log.info("redis-server stopped (exit code %s)", rc)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    config = RedisEntryConfig.from_args(sys.argv[1:] if argv is None else argv, os.environ)
    setup_logging("redis", config.log_level)
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
