"""The listening sockets, bound once by the supervisor and inherited by its
children (`pass_fds`; they rebuild them with `socket.socket(fileno=fd)`).

Every worker of a TCP port shares that port's socket and every web process
shares the HTTP socket, so a worker that dies never closes its port: new
connections wait in the kernel backlog until a worker accepts them again
(SO_REUSEPORT instead would drop the queue of a dying listener).
Binding everything up front also makes a busy port fail fast, before any
child starts.

Under socket activation (`$LISTEN_FDS`, `$LISTEN_PID`, `$LISTEN_FDNAMES`, as
systemd or `systemd-socket-activate` pass them) nothing is bound: the given
sockets, from fd 3 on, are matched to the ports asked for by the port each
listens on. A given socket that is no port we serve, or a port with no
given socket, is a configuration error (one line, exit 2)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
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


LISTEN_FDS_START = 3


def listeners_for(config: SupervisorConfig, environ: Mapping[str, str]) -> Listeners:
    """The sockets systemd gave us, or else our own, bound now."""
    activated = given_sockets(environ, os.getpid())
    return bind_all(config) if activated is None else match_ports(config, activated)


def given_sockets(environ: Mapping[str, str], pid: int) -> list[tuple[str, socket.socket]] | None:
    """(name, socket) for each socket passed by socket activation; None when
    none was passed to us (`$LISTEN_PID` names another process)."""
    count, owner = environ.get("LISTEN_FDS", ""), environ.get("LISTEN_PID", "")
    if not count:
        return None
    if owner and owner != str(pid):
        return None
    if not count.isdigit():
        raise ConfigError(f"socket activation: LISTEN_FDS is not a number: {count!r}")
    names = environ.get("LISTEN_FDNAMES", "").split(":")
    given: list[tuple[str, socket.socket]] = []
    for i in range(int(count)):
        fd = LISTEN_FDS_START + i
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise ConfigError(f"socket activation: fd {fd} is not a socket ({exc})") from None
        os.set_inheritable(fd, False)  # each child gets only its own, through pass_fds
        sock.setblocking(False)
        given.append((names[i] if i < len(names) and names[i] else f"fd {fd}", sock))
    return given


def _port_of(name: str, sock: socket.socket) -> int:
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        raise ConfigError(f"socket activation: {name} (fd {sock.fileno()}) is not a TCP socket")
    port: int = sock.getsockname()[1]
    return port


def match_ports(config: SupervisorConfig, given: list[tuple[str, socket.socket]]) -> Listeners:
    """Each port we serve gets the given socket that listens on it."""
    by_port: dict[int, socket.socket] = {}
    try:
        for name, sock in given:
            port = _port_of(name, sock)
            if port != config.http_port and port not in config.tcp_ports:
                raise ConfigError(
                    f"socket activation: {name} (fd {sock.fileno()}) listens on port {port}, "
                    f"which is neither --http-port {config.http_port} nor a --tcp-port "
                    f"({','.join(map(str, config.tcp_ports))})")
            by_port[port] = sock
        missing = [p for p in (config.http_port, *config.tcp_ports) if p not in by_port]
        if missing:
            raise ConfigError(
                f"socket activation: no socket was given for port(s) "
                f"{','.join(map(str, missing))} (given: {','.join(map(str, sorted(by_port)))})")
    except ConfigError:
        for _name, sock in given:
            sock.close()
        raise
    return Listeners(http=by_port[config.http_port],
                     tcp={p: by_port[p] for p in config.tcp_ports})


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

