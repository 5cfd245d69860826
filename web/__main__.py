"""`python -m web`: one WebSocket front end (CONTRACT §5).

Exit codes: 0 after a clean stop (SIGTERM/SIGINT/SIGHUP), 1 if a background
loop died, 2 for bad flags or a port that cannot be bound."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn

from tcpws.lifecycle import bind_listener, die_with_parent, inherited_socket
from tcpws.logs import setup_logging
from tcpws.redisconn import redact_url
from web import redact
from web.app import create_app
from web.config import WebConfig
from web.head_timeout import head_timeout_protocol
from web.hub import Hub
from web.server import WebServer, grace_after_drain

log = logging.getLogger("web")


def listening_socket(config: WebConfig) -> socket.socket:
    """The supervisor's socket if it handed us one, else our own."""
    if config.listen_fd is not None:
        return inherited_socket(config.listen_fd)
    return bind_listener(config.host, config.port)


def main(argv: Sequence[str] | None = None) -> int:
    config = WebConfig.from_args(sys.argv[1:] if argv is None else argv, os.environ)
    die_with_parent(config.parent_pid)
    setup_logging(config.name, config.log_level)
    if config.log_level != "debug":
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    redact.install(config.ws_token)  # uvicorn logs request lines, ?token= included
    try:
        sock = listening_socket(config)
    except OSError as exc:
        sys.stderr.write(f"web: error: {exc.strerror or exc}\n")
        return 2
    host, port = sock.getsockname()[:2]
    log.info("listening on %s:%d%s; Redis at %s", host, port,
             " (inherited)" if config.listen_fd is not None else "",
             redact_url(config.redis_url))
    hub = Hub(config)
    uv_config = uvicorn.Config(
        create_app(config, hub),
        lifespan="on",
        http=head_timeout_protocol(config.http_timeout, hub.stats),
        log_config=None,
        access_log=False,
        ws_per_message_deflate=config.ws_per_message_deflate,
        ws_max_size=64 * 1024,  # clients only ever send us control traffic
        # typed int, used with asyncio.wait_for: a float is fine.
        timeout_graceful_shutdown=grace_after_drain(config.shutdown_timeout),  # type: ignore[arg-type]
    )
    server = WebServer(uv_config, hub, config)
    server.run(sockets=[sock])
    return server.exit_code


if __name__ == "__main__":
    sys.exit(main())
