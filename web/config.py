"""The web process's configuration: built once from argv + environment
(the only place that reads either), then passed down frozen."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tcpws import cli, cluster
from tcpws.keyfiles import JwtPublicKey, check_security_flags, jwt_public_key
from tcpws.logs import LOG_FORMATS
from tcpws.shards import split_urls

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MIB = 1024 * 1024


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str = DEFAULT_REDIS_URL  # the first shard
    redis_urls: tuple[str, ...] = (DEFAULT_REDIS_URL,)  # every shard, in order (tcpws.shards)
    redis_cluster: str = ""  # a cluster node's URL (tcpws.cluster); set: redis_url(s) unused
    tcp_ports: tuple[int, ...] = (8001, 8002, 8003)  # with redis_cluster: one shard each
    name: str = "web.8000"
    ws_token: str | None = field(default=None, repr=False)  # never logged
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: JwtPublicKey | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    http_tls_cert: str | None = None
    http_tls_key: str | None = None
    allowed_origins: tuple[str, ...] = ()
    max_clients: int = 10000
    http_timeout: float = 10.0
    tls_handshake_timeout: float = 10.0  # HTTPS: seconds for a client's TLS handshake
    client_queue_bytes: int = 8 * MIB
    slow_client_grace: float = 2.0
    shutdown_timeout: float = 5.0
    ws_per_message_deflate: bool = False
    sse_keepalive: float = 15.0
    log_level: str = "info"
    log_format: str = "text"
    parent_pid: int | None = None
    listen_fd: int | None = None
    notify_fd: int | None = None
    hostname: str = "localhost"

    @property
    def heartbeat_name(self) -> str:
        """`<hostname>/<name>`: the key other processes see us under."""
        return f"{self.hostname}/{self.name}"

    @property
    def redis_client_name(self) -> str:
        return f"{cli.WEB_CLIENT_PREFIX}{self.name}"

    @classmethod
    def from_args(cls, argv: Sequence[str], environ: Mapping[str, str]) -> WebConfig:
        """Flags win over environment variables, which win over defaults."""
        env = environ.get
        p = cli.OneLineParser(prog="web", description="tcpws WebSocket front end")
        p.add_argument("--host", default=env("TCPWS_HOST", "127.0.0.1"),
                       help="address to bind when no socket is inherited (TCPWS_HOST)")
        p.add_argument("--port", type=cli.port, default=None, help="HTTP port ($PORT, 8000)")
        p.add_argument("--redis-url", default=env("REDIS_URL", "") or DEFAULT_REDIS_URL,
                       help="Redis to subscribe to; a comma list of shards subscribes to "
                            "each (REDIS_URL)")
        p.add_argument("--redis-cluster", default=env("TCPWS_REDIS_CLUSTER", ""),
                       help="a Redis Cluster node's URL: subscribe to each TCP port's slot "
                            "master; wins over --redis-url (TCPWS_REDIS_CLUSTER; default none)")
        p.add_argument("--tcp-ports", default=env("TCPWS_TCP_PORTS", "8001,8002,8003"),
                       help="with --redis-cluster, the TCP ports whose lines to serve, comma "
                            "list (TCPWS_TCP_PORTS)")
        p.add_argument("--name", default=env(cli.NAME_ENV),
                       help="process name (TCPWS_NAME, default web.<port>)")
        p.add_argument("--ws-token", default=env("TCPWS_WS_TOKEN") or None,
                       help="clients must present this token (TCPWS_WS_TOKEN)")
        p.add_argument("--jwt-secret", default=env("TCPWS_JWT_SECRET") or None,
                       help="stream clients must present a JWT signed with this HS256 secret "
                            "(TCPWS_JWT_SECRET)")
        p.add_argument("--jwt-public-key", default=env("TCPWS_JWT_PUBLIC_KEY") or None,
                       metavar="FILE",
                       help="stream clients must present a JWT signed by this PEM public "
                            "key's private key: RSA for RS256, EC P-256 for ES256 "
                            "(TCPWS_JWT_PUBLIC_KEY)")
        p.add_argument("--metrics-token", default=env("TCPWS_METRICS_TOKEN") or None,
                       help="/metrics and /api/status need Authorization: Bearer this "
                            "(TCPWS_METRICS_TOKEN)")
        p.add_argument("--http-tls-cert", default=env("TCPWS_HTTP_TLS_CERT") or None,
                       metavar="FILE", help="serve HTTPS and WSS with this PEM certificate "
                                            "chain (TCPWS_HTTP_TLS_CERT)")
        p.add_argument("--http-tls-key", default=env("TCPWS_HTTP_TLS_KEY") or None,
                       metavar="FILE", help="the private key of --http-tls-cert "
                                            "(TCPWS_HTTP_TLS_KEY)")
        p.add_argument("--allowed-origins", default=env("TCPWS_ALLOWED_ORIGINS", ""),
                       help="origins served besides the page's own (same host and port as "
                            "the request's Host); comma list, * for any (TCPWS_ALLOWED_ORIGINS)")
        p.add_argument("--max-clients", type=cli.positive_int,
                       default=env("TCPWS_MAX_CLIENTS", "10000"),
                       help="streams per process; beyond it HTTP 503 (TCPWS_MAX_CLIENTS)")
        p.add_argument("--http-timeout", type=cli.seconds, default=env("TCPWS_HTTP_TIMEOUT", "10"),
                       help="close a connection without a complete request head this many "
                            "seconds after it opened or got its last response; 0: off "
                            "(TCPWS_HTTP_TIMEOUT)")
        p.add_argument("--tls-handshake-timeout", type=cli.seconds,
                       default=env("TCPWS_TLS_HANDSHAKE_TIMEOUT", "10"),
                       help="with --http-tls-cert: close a connection that has not finished "
                            "its TLS handshake within this many seconds; counted "
                            "(TCPWS_TLS_HANDSHAKE_TIMEOUT)")
        p.add_argument("--client-queue-bytes", type=cli.positive_int,
                       default=env("TCPWS_CLIENT_QUEUE_BYTES", str(8 * MIB)),
                       help="per-client queue bound in bytes (TCPWS_CLIENT_QUEUE_BYTES)")
        p.add_argument("--slow-client-grace", type=cli.seconds,
                       default=env("TCPWS_SLOW_CLIENT_GRACE", "2"),
                       help="seconds a client's queue may stay over its bound without progress, "
                            "or one frame wait for its socket, before it is closed as too "
                            "slow; 32x the bound closes at once "
                            "(TCPWS_SLOW_CLIENT_GRACE)")
        p.add_argument("--shutdown-timeout", type=cli.seconds,
                       default=env("TCPWS_SHUTDOWN_TIMEOUT", "5"),
                       help="seconds to drain clients on SIGTERM (TCPWS_SHUTDOWN_TIMEOUT)")
        p.add_argument("--ws-per-message-deflate", type=cli.boolean, nargs="?", const=True,
                       default=env("TCPWS_WS_PER_MESSAGE_DEFLATE", "false"),
                       help="offer permessage-deflate (TCPWS_WS_PER_MESSAGE_DEFLATE)")
        p.add_argument("--log-format", type=lambda t: cli.choice(t, LOG_FORMATS),
                       default=env("TCPWS_LOG_FORMAT", "text"),
                       help="text, or json: one object per line (env TCPWS_LOG_FORMAT)")
        p.add_argument("--sse-keepalive", type=cli.seconds,
                       default=env("TCPWS_SSE_KEEPALIVE", "15"),
                       help="seconds of silence after which an SSE stream gets a comment line "
                            "(proxies close idle streams); 0: off (TCPWS_SSE_KEEPALIVE)")
        p.add_argument("--log-level", default=env("TCPWS_LOG_LEVEL", "info"), type=cli.log_level,
                       help="log level (TCPWS_LOG_LEVEL)")
        ns = p.parse_args(list(argv))
        port = ns.port
        if port is None:
            try:
                port = cli.port(env("PORT", "8000"))
            except cli.BadValue as exc:
                p.error(f"PORT: {exc}")
        try:
            child = cli.ChildEnv.from_environ(environ)
        except cli.BadValue as exc:
            p.error(str(exc))
        if not ns.tls_handshake_timeout > 0:
            p.error(f"--tls-handshake-timeout: must be more than 0, not "
                    f"{ns.tls_handshake_timeout}")
        public_key = None
        try:
            check_security_flags(ns.jwt_secret, ns.jwt_public_key,
                                 ns.http_tls_cert, ns.http_tls_key)
            if ns.jwt_public_key:
                public_key = jwt_public_key(ns.jwt_public_key)
        except cli.BadValue as exc:
            p.error(str(exc))
        try:
            urls = split_urls(ns.redis_url)
            tcp_ports = cluster.ports(ns.tcp_ports) if ns.redis_cluster else ()
            if ns.redis_cluster:
                cluster.check_url(ns.redis_cluster)
        except ValueError as exc:
            p.error(str(exc))
        origins = tuple(o.strip().rstrip("/") for o in ns.allowed_origins.split(",") if o.strip())
        return cls(
            host=ns.host,
            port=port,
            redis_url=urls[0],
            redis_urls=urls,
            redis_cluster=ns.redis_cluster,
            tcp_ports=tcp_ports,
            name=ns.name or f"web.{port}",
            ws_token=ns.ws_token or None,
            jwt_secret=ns.jwt_secret or None,
            jwt_public_key=public_key,
            metrics_token=ns.metrics_token or None,
            http_tls_cert=ns.http_tls_cert,
            http_tls_key=ns.http_tls_key,
            allowed_origins=origins,
            max_clients=ns.max_clients,
            http_timeout=ns.http_timeout,
            tls_handshake_timeout=ns.tls_handshake_timeout,
            client_queue_bytes=ns.client_queue_bytes,
            slow_client_grace=ns.slow_client_grace,
            shutdown_timeout=ns.shutdown_timeout,
            ws_per_message_deflate=ns.ws_per_message_deflate,
            sse_keepalive=ns.sse_keepalive,
            log_level=ns.log_level, log_format=ns.log_format,
            parent_pid=child.parent_pid,
            listen_fd=child.listen_fd,
            notify_fd=child.notify_fd,
            hostname=socket.gethostname(),
        )

