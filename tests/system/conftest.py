"""Fixtures shared by the browser tests: one headless Chromium (Debian's,
driven by Playwright; never a downloaded browser); and the integration
tests' process fixtures (`start_web`, `start_worker`, `publisher`,
`cluster`), for system tests that need a web process (or a Redis Cluster)
of their own."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import cluster, publisher, start_web, start_worker
from tests.support.tools import require_tool

__all__ = ["browser", "cluster", "publisher", "start_web", "start_worker"]

CHROMIUM = os.environ.get("TCPWS_CHROMIUM") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium")
    else shutil.which("chromium") or "/usr/bin/chromium")


@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """One headless Chromium, with `extra_args` on its command line."""
    require_tool(CHROMIUM, "the live page", "install Debian's chromium: `make browser` as root")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", *extra_args])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (launching costs seconds)."""
    with chromium() as launched:
        yield launched
