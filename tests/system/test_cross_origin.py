"""The web port's safe defaults in a real Chromium (the one the page test
uses): a page of another site, open in the same browser as ours, cannot
read the stream unless --allowed-origins names it; our own page loads and
reconnects under its Content-Security-Policy with no violation."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from testkit.procs import wait_until
from tests.support.browser import foreign_site, publish, wait_shown, web_process


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context()
    try:
        yield ctx
    finally:
        ctx.close()


def open_foreign(context: Any, site: str, ws_url: str) -> Any:
    pg = context.new_page()
    pg.goto(f"{site}/?target={ws_url}")
    return pg


def test_other_site_cannot_read_the_stream(context: Any, redis_url: str) -> None:
    with web_process(redis_url) as web, foreign_site() as site:
        ours = context.new_page()
        ours.goto(f"http://127.0.0.1:{web.port}/")
        ours.wait_for_selector("body[data-state=live]", timeout=10_000)
        other = open_foreign(context, site, f"ws://127.0.0.1:{web.port}/ws")
        wait_until(lambda: other.evaluate("window.ended"), 10, what="foreign socket closed")
        lines = [f"secret-{i}" for i in range(5)]
        publish(redis_url, *lines)
        wait_shown(ours, lines)
        assert other.evaluate("[window.opened, window.got]") == [False, []]
        assert web.output().count("refused a stream request from origin") == 1


def test_allowed_origin_can_read_the_stream(context: Any, redis_url: str) -> None:
    with foreign_site() as site, \
            web_process(redis_url, "--allowed-origins", site) as web:
        other = open_foreign(context, site, f"ws://127.0.0.1:{web.port}/ws")
        wait_until(lambda: other.evaluate("window.opened"), 10, what="foreign socket open")
        publish(redis_url, "shared-1", "shared-2")
        wait_until(lambda: other.evaluate("window.got.join('\\n').split('\\n').length") >= 2,
                   10, what="lines on the allowed page")
        assert other.evaluate("window.got.join('\\n')") == "shared-1\nshared-2"
        assert not other.evaluate("window.ended")


VIOLATIONS = """window.__csp = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));"""


def test_page_has_no_csp_violation_and_reconnects(context: Any, redis_url: str) -> None:
    context.add_init_script(VIOLATIONS)
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    with web_process(redis_url) as web:
        port = web.port
        response = pg.goto(f"http://127.0.0.1:{port}/")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        pg.wait_for_selector("body[data-state=live]", timeout=10_000)
        publish(redis_url, "before-kill")
        wait_shown(pg, ["before-kill"])
        web.signal(signal.SIGKILL)
        web.wait(5)
        pg.wait_for_selector("body:not([data-state=live])", timeout=10_000)
        publish(redis_url, "while-down")
    console.clear()  # the failed reconnects while web was down are expected errors
    with web_process(redis_url, port=port):
        pg.wait_for_selector("body[data-state=live]", timeout=20_000)
        wait_shown(pg, ["while-down"])
        publish(redis_url, "after")
        wait_shown(pg, ["after"])
    assert pg.evaluate("window.__csp") == []
    assert not [c for c in console if "Content Security Policy" in c], console
    assert not errors, errors
