"""`/sse` in a real browser (Debian's Chromium through Playwright):

* a page with the browser's own EventSource: `kill -9` of the web process,
  the supervisor starts a new one on the same socket, and the browser
  reconnects by itself with `Last-Event-ID`: every line sent meanwhile is
  shown exactly once;
* the live page with its WebSocket blocked falls back to `/sse` and shows
  the lines."""

from __future__ import annotations

import os
import re
import signal
import urllib.request
from typing import Any
from urllib.parse import quote

from testkit.procs import wait_until
from tests.support.browser import EVENT_SOURCE_PAGE, foreign_site, wait_shown
from tests.support.supervised import send_lines, supervised


def test_event_source_resumes_by_itself_after_kill_9_of_web(browser: Any) -> None:
    with foreign_site(EVENT_SOURCE_PAGE) as origin, \
            supervised("--allowed-origins", origin) as system:
        target = f"http://127.0.0.1:{system.http_port}/sse?format=json"
        context = browser.new_context()
        try:
            pg = context.new_page()
            pg.goto(f"{origin}/?target={quote(target)}")
            wait_until(lambda: pg.evaluate("window.opens") == 1, 20, what="EventSource open")
            port = system.tcp_ports[0]
            send_lines(port, [f"before-{i}" for i in range(10)])
            wait_until(lambda: len(pg.evaluate("window.got")) == 10, 20, what="first lines")

            web = system.pid_of("web.1")
            os.kill(web, signal.SIGKILL)
            send_lines(port, [f"meanwhile-{i}" for i in range(10)])  # stored, web down
            wait_until(lambda: system.child("web.1")["pid"] not in (None, web), 30,
                       what="a new web process")
            wait_until(lambda: pg.evaluate("window.opens") >= 2, 30,
                       what="EventSource reconnected by itself")
            send_lines(port, [f"after-{i}" for i in range(10)])
            expected = ([f"before-{i}" for i in range(10)] + [f"meanwhile-{i}" for i in range(10)]
                        + [f"after-{i}" for i in range(10)])
            wait_until(lambda: len(pg.evaluate("window.got")) >= 30, 30, what="every line")
            pg.wait_for_timeout(500)  # a duplicate would be here by now
            assert pg.evaluate("window.got") == expected
            assert pg.evaluate("window.closes") == []  # killed: no close event, just gone
            # The URL has no since=: the new web process resumed this client
            # from the Last-Event-ID header the browser sent by itself.
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{system.http_port}/metrics", timeout=5) as resp:
                metrics = resp.read().decode()
            assert re.search(r"^tcpws_web_resumes_total 1\.0$", metrics, re.MULTILINE), metrics
            print(f"EventSource: {pg.evaluate('window.opens')} opens, "
                  f"{len(pg.evaluate('window.got'))} lines, resumed once by Last-Event-ID")
        finally:
            context.close()


def test_the_page_falls_back_to_sse_when_the_websocket_is_blocked(browser: Any) -> None:
    with supervised() as system:
        context = browser.new_context()
        try:
            pg = context.new_page()
            errors: list[str] = []
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            blocked: list[str] = []

            def block(ws: Any) -> None:  # as a proxy that refuses the upgrade
                blocked.append(ws.url)
                ws.close(code=1011, reason="blocked")

            pg.route_web_socket(re.compile(r"/ws\b"), block)
            pg.goto(f"http://127.0.0.1:{system.http_port}/")
            wait_until(lambda: pg.evaluate("window.tcpws.transport") == "sse", 30,
                       what="the page on SSE")
            wait_until(lambda: pg.evaluate("window.tcpws.state") == "live", 30,
                       what="the page live over SSE")
            lines = [f"via-sse-{i}" for i in range(20)]
            send_lines(system.tcp_ports[0], lines)
            wait_shown(pg, lines)
            assert len(blocked) >= 2
            assert "SSE" in pg.inner_text("#conn-state")
            assert errors == []
        finally:
            context.close()
