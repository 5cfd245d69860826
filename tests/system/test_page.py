"""The live page at `/` in a real browser: Debian's Chromium
driven by Playwright, against real redis-server, web and tcp_worker
processes. Never downloads a browser: without /usr/bin/chromium the test
skips loudly, or fails when $CI is set (there it must run).

Screenshots go to tests/artifacts/ on every run; with
TCPWS_UPDATE_SCREENSHOT=1 the first one also replaces docs/screenshot.png."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from testkit.procs import ROOT, Proc, free_port, python_module, wait_until
from tests.support.browser import wait_shown

ARTIFACTS = ROOT / "tests" / "artifacts"
UPDATE_SCREENSHOT = os.environ.get("TCPWS_UPDATE_SCREENSHOT") == "1"

sync_api = pytest.importorskip("playwright.sync_api")


def finish(proc: Proc) -> None:
    """Stop and close the output pipe that `Proc.stop` leaves open."""
    proc.stop(timeout=10)
    if proc.popen.stdout is not None:
        proc.popen.stdout.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (own sessionStorage) that must see no JavaScript error."""
    context = browser.new_context(viewport={"width": 1400, "height": 820})
    try:
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        context.close()


class System:
    """redis (fixture) + one web + two tcp workers, each on a free port."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.web_port = free_port()
        self.tcp_ports = [free_port(), free_port()]
        self.procs: list[Proc] = []
        self.web: Proc | None = None
        # All at once (each waits for Redis by itself), then wait for each.
        workers = [self.spawn(python_module("tcp_worker", "--port", str(port)), f"tcp.{port}")
                   for port in self.tcp_ports]
        self.start_web(wait=False)
        for proc in [*workers, self.web]:
            assert proc is not None
            proc.wait_for_output(r"\bready\b")

    def spawn(self, argv: list[str], name: str) -> Proc:
        proc = Proc(argv, env={"REDIS_URL": self.redis_url}, name=name)
        self.procs.append(proc)
        return proc

    def start_web(self, wait: bool = True) -> None:
        self.web = self.spawn(python_module("web", "--port", str(self.web_port)), "web")
        if wait:
            self.web.wait_for_output(r"\bready\b")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            finish(proc)


@pytest.fixture
def system(redis_url: str) -> Iterator[System]:
    sys_ = System(redis_url)
    try:
        yield sys_
    finally:
        sys_.stop()


def send(port: int, lines: list[str]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall("".join(line + "\n" for line in lines).encode())


def last_shown_id(pg: Any) -> str | None:
    ids: list[str] = pg.eval_on_selector_all("#stream .line", "els => els.map(e => e.dataset.id)")
    return ids[-1] if ids else None


def worker_rows(pg: Any) -> dict[str, dict[str, str]]:
    """The workers table: name -> {column class: text}."""
    rows: list[dict[str, str]] = pg.eval_on_selector_all(
        "#workers tbody tr",
        "trs => trs.map(tr => Object.fromEntries("
        "Array.from(tr.cells).map(td => [td.className, td.textContent])))")
    return {row["name"]: row for row in rows}


def tcp_lines(pg: Any, port: int) -> int | None:
    for row in worker_rows(pg).values():
        if row.get("port") == str(port) and row["name"].endswith(f"tcp.{port}"):
            return int(row["lines"] or 0)
    return None


class Trickle(threading.Thread):
    """Sends a line every few ms until stopped, so rates and counts move."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__(daemon=True)
        self.ports = ports
        self.stop = threading.Event()

    def run(self) -> None:
        socks = [socket.create_connection(("127.0.0.1", p), timeout=5) for p in self.ports]
        try:
            n = 0
            while not self.stop.wait(0.01):
                for port, s in zip(self.ports, socks, strict=True):
                    s.sendall(f"sensor-{port} temp={20 + n % 7}.{n % 10} seq={n}\n".encode())
                n += 1
        finally:
            for s in socks:
                s.close()


def screenshot(pg: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    pg.screenshot(path=str(path))
    if UPDATE_SCREENSHOT and name == "page.png":
        shutil.copyfile(path, ROOT / "docs" / "screenshot.png")


def test_page_shows_stream_rates_and_workers(page: Any, system: System) -> None:
    pg = page
    pg.goto(system.url)
    pg.wait_for_selector("body[data-state=live]", timeout=10_000)

    # (1) lines sent over TCP appear on the page, from both ports
    first = [f"hello-{p}-{i}" for p in system.tcp_ports for i in range(3)]
    for port in system.tcp_ports:
        send(port, [line for line in first if line.startswith(f"hello-{port}-")])
    wait_shown(pg, first)

    # (3) the workers table lists every tcp worker, and its counts move
    wait_until(lambda: all(tcp_lines(pg, p) for p in system.tcp_ports), 10, interval=0.1,
               what="both tcp workers with lines in the table")
    before = {p: tcp_lines(pg, p) for p in system.tcp_ports}
    trickle = Trickle(system.tcp_ports)
    trickle.start()
    try:
        wait_until(lambda: all((tcp_lines(pg, p) or 0) > (before[p] or 0)
                               for p in system.tcp_ports),
                   15, interval=0.1, what="line counts in the workers table to grow")
        # the sparklines have a row per port, and the port filter narrows the stream
        wait_until(lambda: pg.locator("#rates .rate-row").count() == 2, 5, what="rate rows")
        pg.select_option("#port-filter", str(system.tcp_ports[0]))
        ports_shown = set(pg.eval_on_selector_all(
            "#stream .line", "els => els.map(e => e.dataset.port)"))
        assert ports_shown == {str(system.tcp_ports[0])}
        pg.select_option("#port-filter", "")
        # search narrows the stream and highlights the match
        pg.fill("#search", f"sensor-{system.tcp_ports[1]}")
        shown = pg.eval_on_selector_all(
            "#stream .line .data",
            "els => els.map(e => [e.textContent, e.querySelectorAll('mark').length])")
        assert shown and all(f"sensor-{system.tcp_ports[1]}" in text for text, _ in shown)
        assert all(marks == 1 for _, marks in shown)
        pg.fill("#search", "")
        # pause freezes the view while lines keep arriving; resume catches up
        pg.click("#pause")
        frozen = last_shown_id(pg)
        received = pg.evaluate("window.tcpws.received")
        wait_until(lambda: pg.evaluate("window.tcpws.received") > received + 20, 10,
                   interval=0.1, what="lines arriving while paused")
        assert last_shown_id(pg) == frozen
        pg.click("#pause")
        wait_until(lambda: last_shown_id(pg) != frozen, 5, what="view to catch up on resume")
        assert pg.inner_text("#clients").strip() not in ("", "–")
        screenshot(pg, "page.png")  # (4) with live data
    finally:
        trickle.stop.set()
        trickle.join(5)


def kill_web_send_restart(pg: Any, system: System, lines: list[str], shot: str) -> None:
    """kill -9 the web process, send `lines` while it is down (they go to the
    Redis history), start web again on the same port."""
    assert system.web is not None
    system.web.signal(signal.SIGKILL)
    system.web.wait(5)
    pg.wait_for_selector("body:not([data-state=live])", timeout=10_000)
    half = len(lines) // 2
    send(system.tcp_ports[0], lines[:half])
    send(system.tcp_ports[1], lines[half:])
    screenshot(pg, shot)
    system.start_web()


def test_page_reconnects_after_web_is_killed(page: Any, system: System) -> None:
    pg = page
    pg.goto(system.url)
    pg.wait_for_selector("body[data-state=live]", timeout=10_000)

    # (2) web killed before the page saw any line: it resumes from the
    # server's last id (from /api/status), not from "live only"
    early = [f"early-down-{i}" for i in range(6)]
    kill_web_send_restart(pg, system, early, "page-disconnected.png")
    pg.wait_for_selector("body[data-state=live]", timeout=20_000)
    wait_shown(pg, early)

    # ... and again with lines seen: it reconnects with since=<last line id>
    during = [f"while-web-down-{i}" for i in range(20)]
    kill_web_send_restart(pg, system, during, "page-disconnected-2.png")
    pg.wait_for_selector("body[data-state=live]", timeout=20_000)
    wait_shown(pg, during)
    after = [f"after-{i}" for i in range(3)]
    send(system.tcp_ports[0], after)
    wait_shown(pg, after)
    data = pg.eval_on_selector_all("#stream .line .data", "els => els.map(e => e.textContent)")
    assert len(data) == len(set(data)), "a line was shown twice"
    screenshot(pg, "page-reconnected.png")

    # a reload resumes too: the last id is kept in sessionStorage
    pg.goto("about:blank")
    away = [f"while-page-away-{i}" for i in range(5)]
    send(system.tcp_ports[1], away)
    pg.goto(system.url)
    wait_shown(pg, away)
