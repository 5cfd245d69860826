"""The listening sockets, bound once by the supervisor and inherited by its
children (`pass_fds`; they rebuild them with `socket.socket(fileno=fd)`).

Every worker of a TCP port shares that port's socket and every web process
shares the HTTP socket, so a worker that dies never closes its port: new
connections wait in the kernel backlog until a worker accepts them again
(SO_REUSEPORT instead would drop the queue of a dying listener).
Binding everything up front also makes a busy port fail fast, before any
child starts."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from supervisor.config import ConfigError, SupervisorConfig
from tcpws.lifecycle import LISTEN_BACKLOG, bind_listener


@dataclass
class Listeners:
    """The HTTP socket and one socket per TCP port, owned by the supervisor."""

    http: socket.socket
    tcp: dict[int, socket.socket] = field(default_factory=dict)

    def of(self, kind: str) -> list[socket.socket]:
        """The sockets that children of `kind` ("web", "tcp") serve."""
        return {"web": [self.http], "tcp": list(self.tcp.values())}.get(kind, [])

    def all(self) -> list[socket.socket]:
        return [self.http, *self.tcp.values()]

    def close(self) -> None:
        for sock in self.all():
            sock.close()


def bind_all(config: SupervisorConfig) -> Listeners:
    """Bind the HTTP port and every TCP port; ConfigError if one is taken.

    Also checks that the `--redis-listen` port is free, so that a busy port
    there fails before anything starts too."""
    bound: list[socket.socket] = []
    try:
        http = _bind(config.host, config.http_port, bound)
        tcp = {port: _bind(config.host, port, bound) for port in config.tcp_ports}
        if config.redis_listen is not None:
            _bind(*config.redis_listen, bound).close()
    except ConfigError:
        for sock in bound:
            sock.close()
        raise
    return Listeners(http=http, tcp=tcp)


def _bind(host: str, port: int, bound: list[socket.socket]) -> socket.socket:
    try:
        sock = bind_listener(host, port, LISTEN_BACKLOG)
    except OSError as exc:
        raise ConfigError(f"{exc.strerror or exc} (is another tcpws running?)") from None
    bound.append(sock)
    return sock

