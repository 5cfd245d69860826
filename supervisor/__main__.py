"""`python -m supervisor`: run the whole system, or talk to a running one
(`status`, `scale tcp N`, `restart NAME`, `stop`).

Exit codes: 0 every child stopped cleanly; 1 a child failed, was killed or
never became ready (the log says which and why), or a control command
failed; 2 bad configuration or a busy port, before anything started."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from supervisor.config import ConfigError, SupervisorConfig, from_args
from supervisor.control import (
    CLIENT_TIMEOUT,
    RELOAD_TIMEOUT,
    ControlUnavailable,
    check_free,
    format_status,
    send,
)
from supervisor.redis_stage import EmbeddedRedis, prepare
from supervisor.show_config import render
from supervisor.sockets import listeners_for
from supervisor.supervisor import main as run_supervisor
from tcpws.logs import formatter
from tcpws.redis_server import RedisNotFound
from tcpws.redisconn import redact_url


def setup_logging(level: str, fmt: str) -> None:
    """Our own records in the same stream and style as the children's lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter("supervisor", fmt,
                                   "%(asctime)s supervisor | %(levelname)s %(message)s",
                                   "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def fail(message: str, code: int = 2) -> int:
    print(f"supervisor: error: {message}", file=sys.stderr)
    return code


def control_command(config: SupervisorConfig) -> int:
    words = list(config.command)
    try:
        reply = send(config.control_socket, words,
                     RELOAD_TIMEOUT if words[0] == "reload" else CLIENT_TIMEOUT)
    except ControlUnavailable as exc:
        return fail(str(exc), 1)
    if not reply.get("ok"):
        return fail(str(reply.get("error")), 1)
    if words[0] == "status":
        print(format_status(reply["children"]))
    else:
        print(reply.get("message", "ok"))
    return 0


def run(config: SupervisorConfig) -> int:
    try:
        check_free(config.control_socket)
        listeners = listeners_for(config, config.base_env)
    except ConfigError as exc:
        return fail(str(exc))
    redis: EmbeddedRedis | None = None
    try:
        if config.embedded_redis:
            redis = prepare(config)
    except (RedisNotFound, OSError) as exc:
        listeners.close()
        return fail(f"cannot start the embedded Redis: {exc}")
    setup_logging(config.log_level, config.log_format)
    logging.getLogger("supervisor").info(
        "pid %d; redis %s; stop time-out %.1f s", os.getpid(),
        "embedded" if redis else f"cluster {redact_url(config.redis_cluster)}"
        if config.redis_cluster else ",".join(map(redact_url, str(config.redis_url).split(","))),
        config.stop_timeout,
        extra={"stop_timeout": config.stop_timeout, "tcp_ports": list(config.tcp_ports)})
    try:
        return asyncio.run(run_supervisor(config, listeners, redis))
    finally:
        listeners.close()
        if redis is not None:
            redis.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as exc:
        return fail(str(exc))
    if config.print_config:
        print(render(config))
        return 0
    if config.command[0] != "run":
        return control_command(config)
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
