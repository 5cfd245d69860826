"""tcpws behind a real nginx (Debian's package) under the path prefix
/tcpws/, configured with exactly contrib/nginx/tcpws.conf (the README's
snippet): the page, /ws and /api/status work through it in a real Chromium,
and a page of another origin is still refused. nginx runs in the
foreground on a free loopback port with every path in a temporary
directory. Never installs nginx itself (`scripts/install-nginx` does, from
`make test`): without it the test skips loudly, or fails when $CI is set."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from testkit.procs import ROOT, Proc, free_port, port_open, wait_until
from tests.support.browser import foreign_site, publish, wait_shown, web_process
from tests.support.tools import require_tool

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SNIPPET = ROOT / "contrib" / "nginx" / "tcpws.conf"
MAIN = """daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/tcpws.conf;
}}
"""


@pytest.fixture
def nginx_for(tmp_path: Path) -> Iterator[Any]:
    """`start(web_port) -> nginx port`: the snippet, pointed at our ports."""
    require_tool(NGINX, "the reverse-proxy set-up",
                 "install Debian's nginx: scripts/install-nginx as root")
    tmp = Path(tempfile.mkdtemp(prefix="tcpws-nginx-", dir=tmp_path))
    tmp.chmod(0o755)  # started as root, nginx's workers run as nobody
    procs: list[Proc] = []

    def start(web_port: int) -> int:
        port = free_port()
        snippet = SNIPPET.read_text()
        assert "listen 127.0.0.1:8080;" in snippet and "http://127.0.0.1:8000/" in snippet
        (tmp / "tcpws.conf").write_text(
            snippet.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
                   .replace("http://127.0.0.1:8000/", f"http://127.0.0.1:{web_port}/"))
        (tmp / "nginx.conf").write_text(MAIN.format(tmp=tmp))
        proc = Proc([NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"),
                     "-c", str(tmp / "nginx.conf")], name="nginx")
        procs.append(proc)
        wait_until(lambda: port_open(port) or proc.popen.poll() is not None, 10,
                   what="nginx listening")
        assert proc.popen.poll() is None, proc.output() + (tmp / "error.log").read_text()
        return port

    yield start
    for proc in procs:
        proc.stop(timeout=5)
        if proc.popen.stdout is not None:
            proc.popen.stdout.close()


def test_behind_nginx_under_a_prefix(browser: Any, nginx_for: Any,
                                     redis_url: str) -> None:
    with web_process(redis_url) as web, foreign_site() as site:
        port = nginx_for(web.port)
        base = f"http://127.0.0.1:{port}/tcpws/"
        with urllib.request.urlopen(base + "api/status", timeout=5) as r:
            assert json.loads(r.read())["ready"] is True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/tcpws", timeout=5) as r:
            assert r.url == base  # the bare prefix redirects, so relative URLs resolve

        ctx = browser.new_context()
        try:
            violations: list[str] = []
            ctx.add_init_script("document.addEventListener('securitypolicyviolation',"
                                " (e) => console.error('CSP ' + e.violatedDirective))")
            pg = ctx.new_page()
            pg.on("console", lambda m: violations.append(m.text) if "CSP" in m.text else None)
            pg.goto(base)
            pg.wait_for_selector("body[data-state=live]", timeout=10_000)
            other = ctx.new_page()
            other.goto(f"{site}/?target=ws://127.0.0.1:{port}/tcpws/ws")
            wait_until(lambda: other.evaluate("window.ended"), 10, what="foreign socket closed")
            publish(redis_url, "through-nginx-1", "through-nginx-2")
            wait_shown(pg, ["through-nginx-1", "through-nginx-2"])
            # the workers table is filled from api/status, through the prefix too
            wait_until(lambda: "from" in pg.inner_text("#status-info"), 10,
                       what="api/status polled through the prefix")
            assert other.evaluate("[window.opened, window.got]") == [False, []]
            assert violations == []
        finally:
            ctx.close()

        with pytest.raises(InvalidStatus) as refused:
            with connect(f"ws://127.0.0.1:{port}/tcpws/ws", origin="http://evil.example",  # type: ignore[arg-type]
                         open_timeout=5):
                pass
        assert refused.value.response.status_code == 403
        with connect(f"ws://127.0.0.1:{port}/tcpws/ws", open_timeout=5,
                     origin=f"http://127.0.0.1:{port}") as ws:  # type: ignore[arg-type]
            publish(redis_url, "same-origin via nginx")
            assert ws.recv(timeout=10) == "same-origin via nginx"


def test_documented_snippet_is_the_tested_file() -> None:
    """The snippet shown to users is the file this test runs, comments aside."""
    def config_lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.strip() and
                not line.lstrip().startswith("#")]

    readme = (ROOT / "README.md").read_text()
    shown = readme.split("```nginx\n", 1)[1].split("```", 1)[0]
    assert config_lines(shown) == config_lines(SNIPPET.read_text())
