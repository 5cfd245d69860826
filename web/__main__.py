"""`python -m web`: one WebSocket front end (docs/web.md).

Exit codes: 0 after a clean stop (SIGTERM/SIGINT/SIGHUP), 1 if a background
loop died, 2 for bad flags or a port that cannot be bound."""

from __future__ import annotations

import logging
import os
import socket
import sys
import warnings
from collections.abc import Sequence

from jwt.warnings import InsecureKeyLengthWarning

from tcpws.lifecycle import bind_listener, die_with_parent, inherited_socket
from tcpws.logs import setup_logging
from tcpws.redisconn import redact_url
from web import redact
from web.app import create_app
from web.config import WebConfig
from web.hub import Hub
from web.server import WebServer

log = logging.getLogger("web")
MIN_HS256_SECRET = 32  # RFC 7518 3.2: a key at least as long as the hash


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
    if config.jwt_secret and len(config.jwt_secret.encode()) < MIN_HS256_SECRET:
        # Said once here rather than by PyJWT on every token checked.
        log.warning("--jwt-secret is shorter than %d bytes: weak for HS256", MIN_HS256_SECRET)
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
    try:
        sock = listening_socket(config)
    except OSError as exc:
        sys.stderr.write(f"web: error: {exc.strerror or exc}\n")
        return 2
    host, port = sock.getsockname()[:2]
    log.info("listening on %s:%d%s%s; Redis at %s", host, port,
             " (inherited)" if config.listen_fd is not None else "",
             " with TLS" if config.http_tls_cert else "",
             redact_url(config.redis_url))
    hub = Hub(config)
    server = WebServer(config, hub, create_app(hub))
    server.run(sockets=[sock])
    return server.exit_code


if __name__ == "__main__":
    sys.exit(main())
