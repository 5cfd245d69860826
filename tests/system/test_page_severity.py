"""The live page colours syslog lines by severity (a real Chromium, a tcp
worker with --parse syslog, a web): errors red, warnings amber, plain text
and informational lines as before."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from testkit.procs import Proc, free_port, python_module
from tests.support.browser import wait_shown

sync_api = pytest.importorskip("playwright.sync_api")

LINES = {"<11>1 - h app - - - disk failed": "3", "<12>Dec  4 05:53:41 h app: low space": "4",
         "<14>1 - h app - - - all good": "6", "plain text": None}


@pytest.fixture
def procs(redis_url: str) -> Iterator[tuple[int, int]]:
    tcp, web = free_port(), free_port()
    started = [Proc(python_module("tcp_worker", "--port", str(tcp), "--parse", "syslog"),
                    env={"REDIS_URL": redis_url}, name="tcp"),
               Proc(python_module("web", "--port", str(web)), env={"REDIS_URL": redis_url},
                    name="web")]
    try:
        for proc in started:
            proc.wait_for_output(r"\bready\b")
        yield tcp, web
    finally:
        for proc in started:
            proc.stop(timeout=10)
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()


def test_page_colours_lines_by_severity(browser: Any, procs: tuple[int, int]) -> None:
    tcp, web = procs
    context = browser.new_context()
    try:
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(f"http://127.0.0.1:{web}/")
        pg.wait_for_selector("body[data-state=live]", timeout=15_000)  # the CSP forbids eval
        with socket.create_connection(("127.0.0.1", tcp), timeout=5) as s:
            s.sendall("".join(line + "\n" for line in LINES).encode())
        wait_shown(pg, list(LINES))
        rows = pg.eval_on_selector_all("#stream .line", """els => els.map(e => [
            e.querySelector('.data').textContent, e.dataset.severity || null,
            getComputedStyle(e.querySelector('.data')).color])""")
        assert not errors
    finally:
        context.close()
    got = {text: sev for text, sev, _ in rows}
    assert got == LINES
    colour = {sev: c for _, sev, c in rows}
    assert colour["3"] != colour[None] and colour["4"] != colour[None]
    assert colour["3"] != colour["4"] and colour["6"] == colour[None]
