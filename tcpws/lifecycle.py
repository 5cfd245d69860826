"""The child side of the supervisor protocol.

The supervisor passes, through the environment (named in `tcpws.cli`, read
only by each process's config module):
  * ``TCPWS_PARENT_PID``: its pid; the child asks the kernel for SIGTERM when
    the parent dies (PR_SET_PDEATHSIG) and checks it did not die already;
  * ``TCPWS_LISTEN_FD``: an inherited listening socket to serve, instead of
    binding ``--port`` itself, so queued connections survive a worker's death;
  * ``TCPWS_NOTIFY_FD``: the write end of a pipe; the child writes one line
    there once it is ready to serve, then closes it.
Run standalone (honcho, by hand), none of them is set and each call is a
no-op.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
LISTEN_BACKLOG = 1024


def die_with_parent(parent_pid: int | None, sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` when the supervisor dies, so no child
    outlives a SIGKILLed supervisor holding its ports.

    Must run early in the child's entry point. If the parent is already gone
    (it died between fork and here), the signal is raised at once."""
    if parent_pid is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as exc:  # not Linux
        log.warning("cannot set PR_SET_PDEATHSIG: %s", exc)
    if os.getppid() != parent_pid:
        signal.raise_signal(sig)


def parent_alive(parent_pid: int | None) -> bool:
    """False once the supervisor that started us is gone."""
    return parent_pid is None or os.getppid() == parent_pid


def notify_ready(notify_fd: int | None, message: str = "READY") -> None:
    """Tell the supervisor we are ready to serve; idempotent."""
    if notify_fd is None:
        return
    try:
        os.write(notify_fd, message.encode() + b"\n")
        os.close(notify_fd)
    except OSError as exc:
        log.debug("notify fd %d: %s", notify_fd, exc)


def inherited_socket(fd: int) -> socket.socket:
    """Rebuild a listening socket handed over by the supervisor.

    `socket.socket(fileno=fd)` detects family, type and proto, so asyncio
    sees IPPROTO_TCP and sets TCP_NODELAY (with proto=0 it would not, ~40 ms
    more on small frames)."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


def bind_listener(host: str, port: int, backlog: int = LISTEN_BACKLOG) -> socket.socket:
    """Bind and listen on host:port (used standalone, and by the supervisor).

    Raises OSError with a readable message when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock
