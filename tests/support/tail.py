"""`python -m tcpws.tail` as the tests run it: a real process, its stdout
and stderr collected apart (stdout is what a user pipes on)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import IO

from testkit.procs import PYTHON, ROOT, wait_until


class Tail:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(
            [PYTHON, "-m", "tcpws.tail", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                         for stream, into in ((self.popen.stdout, self.out),
                                              (self.popen.stderr, self.err))]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(stream: IO[bytes] | None, into: list[str]) -> None:
        assert stream is not None
        with stream:
            for raw in stream:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_lines(self, count: int, timeout: float = 30.0) -> list[str]:
        try:
            wait_until(lambda: len(self.out) >= count, timeout, what=f"{count} lines from tail")
        except TimeoutError:
            raise AssertionError(f"tail printed {len(self.out)} of {count} lines; "
                                 f"stderr: {self.err[-10:]}") from None
        return list(self.out)

    def wait(self, timeout: float = 20.0) -> int:
        rc = self.popen.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=5)
        return rc

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it."""
        self.popen.send_signal(signal.SIGINT)
        return self.wait()

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.wait()


@contextlib.contextmanager
def tailing(*args: str, env: dict[str, str] | None = None) -> Iterator[Tail]:
    tail = Tail(*args, env=env)
    try:
        yield tail
    finally:
        tail.kill()
