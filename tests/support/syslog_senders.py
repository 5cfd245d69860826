"""Real syslog senders for the tests: util-linux `logger` and an rsyslogd
relay run in the foreground with its own config, plus `ByteSink`, a TCP
listener that keeps every byte each connection sent (what the senders put
on the wire, before any framing)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from testkit.procs import Proc, port_open, running, wait_until

from .tools import require_tool

LOGGER = "/usr/bin/logger"
RSYSLOGD = "/usr/sbin/rsyslogd"
PROTOCOL23 = "RSYSLOG_SyslogProtocol23Format"  # RFC 5424 out, MSG ending in a counted "\n"


def require_logger() -> None:
    require_tool(LOGGER, "util-linux logger as a sender", "Debian's bsdutils has it")


def require_rsyslogd() -> None:
    require_tool(RSYSLOGD, "rsyslog as a relay", "run scripts/install-rsyslog as root")


def logger_argv(port: int, *args: str) -> list[str]:
    """`logger` sending over TCP (-T) to 127.0.0.1:port, then `args`."""
    return [LOGGER, "-n", "127.0.0.1", "-P", str(port), "-T", *args]


class ByteSink:
    """Accepts connections on a free port and keeps what each sent:
    `received()` the bytes of every connection so far (in the order they
    opened, finished or not), `finished` how many have closed."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._conns: list[bytearray] = []
        self.finished = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._collect, args=(conn,), daemon=True).start()

    def _collect(self, conn: socket.socket) -> None:
        got = bytearray()
        with self._lock:
            self._conns.append(got)
        with conn:
            while chunk := conn.recv(65536):
                with self._lock:
                    got += chunk
        with self._lock:
            self.finished += 1

    def received(self) -> list[bytes]:
        with self._lock:
            return [bytes(b) for b in self._conns]

    def wait_finished(self, connections: int, timeout: float = 15.0) -> list[bytes]:
        """Until `connections` have closed; then every connection's bytes."""
        wait_until(lambda: self.finished >= connections, timeout,
                   what=f"{connections} finished connection(s)")
        return self.received()

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=2)


def relay_config(workdir: Path, listen_port: int, target_port: int,
                 template: str = PROTOCOL23) -> str:
    """rsyslog.conf: imtcp on `listen_port`, forwarded over TCP with
    octet-counted framing to `target_port`; retries forever (no loss while
    the target is down), as the README's snippet does."""
    return f"""global(workDirectory="{workdir}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{listen_port}")
action(type="omfwd" target="127.0.0.1" port="{target_port}" protocol="tcp"
       TCP_Framing="octet-counted" template="{template}"
       action.resumeRetryCount="-1" queue.type="LinkedList")
"""


@contextlib.contextmanager
def rsyslog_relay(workdir: Path, listen_port: int, target_port: int,
                  template: str = PROTOCOL23) -> Iterator[Proc]:
    """rsyslogd in the foreground (-n), unprivileged-friendly: its own
    config, pid file and work directory under `workdir`."""
    conf = workdir / "rsyslog.conf"
    conf.write_text(relay_config(workdir, listen_port, target_port, template))
    with running(RSYSLOGD, "-n", "-f", str(conf), "-i", str(workdir / "rsyslogd.pid"),
                 name="rsyslogd") as proc:
        wait_until(lambda: port_open(listen_port), 15, what="rsyslogd listening")
        yield proc
