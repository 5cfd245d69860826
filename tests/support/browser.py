"""Helpers for the browser tests: what the page shows; and for the tests of the web port's safe
defaults: a `python -m web` of the test's own, lines published exactly as a
tcp worker publishes them, and a page of another origin (a tiny
`http.server` on another loopback port) that tries to read our stream."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import redis

from tcpws.protocol import PUBLISH_SCRIPT, publish_args, publish_keys
from testkit.procs import Proc, free_port, python_module, wait_until

# The other site's page: no CSP of ours applies to it, so an inline script.
FOREIGN_PAGE = """<!doctype html><title>another site</title>
<script>
window.got = []; window.opened = false; window.ended = false;
const ws = new WebSocket(new URLSearchParams(location.search).get("target"));
ws.onopen = () => { window.opened = true; };
ws.onmessage = (ev) => { window.got.push(ev.data); };
ws.onerror = () => { window.ended = true; };
ws.onclose = () => { window.ended = true; };
</script>"""


@contextlib.contextmanager
def web_process(redis_url: str, *args: str, port: int | None = None) -> Iterator[Proc]:
    port = port or free_port()
    proc = Proc(python_module("web", "--port", str(port), "--redis-url", redis_url,
                              "--name", f"web.test.{port}", *args), name=f"web:{port}")
    proc.port = port  # type: ignore[attr-defined]
    try:
        proc.wait_for_output(r"ready: serving", timeout=20)
        yield proc
    finally:
        proc.stop(timeout=10)
        if proc.popen.stdout is not None:
            proc.popen.stdout.close()


def publish(redis_url: str, *lines: str, port: int = 8001) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        batch = [(port, "127.0.0.1:5000", time.time(), line) for line in lines]
        client.eval(PUBLISH_SCRIPT, 2, *publish_keys(), *publish_args(100_000, batch))
    finally:
        client.close()


# A page of another site that reads /sse with the browser's own EventSource
# (which reconnects and sends Last-Event-ID by itself).
EVENT_SOURCE_PAGE = """<!doctype html><title>an EventSource page</title>
<script>
window.got = []; window.opens = 0; window.closes = [];
const es = new EventSource(new URLSearchParams(location.search).get("target"));
es.onopen = () => { window.opens += 1; };
es.onmessage = (ev) => { for (const m of JSON.parse(ev.data)) window.got.push(m.data); };
es.addEventListener("close", (ev) => { window.closes.push(ev.data); });
</script>"""


class _ForeignPage(http.server.BaseHTTPRequestHandler):
    page = FOREIGN_PAGE

    def do_GET(self) -> None:
        body = self.page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def foreign_site(page: str = FOREIGN_PAGE) -> Iterator[str]:
    """The origin (`http://127.0.0.1:PORT`) of another site's page, served
    at `/?target=STREAM_URL`."""
    handler = type("Page", (_ForeignPage,), {"page": page})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def shown_lines(pg: Any) -> set[str]:
    return set(pg.eval_on_selector_all("#stream .line .data", "els => els.map(e => e.textContent)"))


def wait_shown(pg: Any, lines: list[str], timeout: float = 15.0) -> None:
    def all_shown() -> bool:
        return set(lines) <= shown_lines(pg)
    try:
        wait_until(all_shown, timeout, interval=0.1, what="lines on the page")
    except TimeoutError:
        missing = sorted(set(lines) - shown_lines(pg))
        raise AssertionError(f"{len(missing)} line(s) never shown, e.g. {missing[:5]}") from None
