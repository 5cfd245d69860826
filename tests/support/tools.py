"""Real outside programs the tests drive (Chromium, nginx, curl, ...): where
one is missing, the test says so loudly and skips, or fails when $CI is set
(there the Makefile has installed it, so a missing one is a broken set-up)."""

from __future__ import annotations

import os

import pytest


def require_tool(path: str, what: str, install: str) -> None:
    """Skip (fail under $CI) unless `path` is an executable file."""
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return
    reason = f"NO {what.upper()}: {path} is missing, so {what} is NOT tested ({install})"
    if os.environ.get("CI"):
        pytest.fail(reason + "; $CI is set, so this is a failure, not a skip")
    pytest.skip(reason)
