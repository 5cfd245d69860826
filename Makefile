# The two commands a user needs: `make run` and `make test`. Each creates
# .venv and installs the project the first time, then runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: run test lint unit bench soak chaos browser nginx rsyslog systemd-tools curl redis7 cluster haproxy clean

# setup.py builds the framers' C scan (tcp_worker/framings/_scan.c) in place.
$(STAMP): pyproject.toml setup.py tcp_worker/framings/_scan.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tcpws needs Python 3.11 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m supervisor $(ARGS)

# Chromium for the page test, from Debian's packages, never a browser download.
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the page test will skip"; \
	  else echo "warning: not root or no apt-get: cannot install chromium; the page test will skip"; fi; }

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

# nginx for the reverse-proxy test, from Debian's packages (as `browser` does for chromium).
nginx:
	@./scripts/install-nginx

# rsyslogd for the syslog relay tests, from Debian's packages (as `nginx`).
rsyslog:
	@./scripts/install-rsyslog

# systemd-socket-activate and systemd-analyze for the service tests, from Debian's systemd package.
systemd-tools:
	@./scripts/install-systemd-tools

# curl for the SSE tests (a real `curl -N` reads /sse).
curl:
	@./scripts/install-curl

# Redis 7 (cluster mode, sharded pub/sub) for the cluster tests, from Debian's
# redis-tools, linked into a private directory off PATH (scripts/install-redis7).
redis7:
	@./scripts/install-redis7

# A local 3-master/3-replica Redis Cluster in the foreground (ARGS="--base-port 7000").
cluster: $(STAMP) redis7
	$(PY) -m testkit.cluster $(ARGS)

# HAProxy for the PROXY-protocol test, from Debian's packages (as `nginx`).
haproxy:
	@./scripts/install-haproxy

test: $(STAMP) browser nginx rsyslog systemd-tools curl redis7 haproxy lint
	$(PY) -m pytest

# The fast loop: unit tests only (pure code and each process's --help, seconds).
unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

bench: $(STAMP)
	$(PY) -m benchmarks $(ARGS)

# 500 connections x 4 lines/s for 10 min (ARGS="--minutes 3" to change): RSS flat, 0 lost.
soak: $(STAMP)
	$(PY) -m benchmarks.soak $(ARGS)

chaos: $(STAMP)
	$(PY) -m benchmarks.chaos $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build
	rm -f tcp_worker/framings/_scan.*.so
