"""What the three processes' command lines and the supervisor -> child
protocol share: one spelling of each name (the rest of this module's
helpers are added as the configs move onto it)."""

from __future__ import annotations

# The supervisor -> child environment: set by supervisor/specs.py and
# supervisor/child.py, read by each child's config module.
PARENT_PID_ENV = "TCPWS_PARENT_PID"  # the child dies with this pid (PR_SET_PDEATHSIG)
LISTEN_FD_ENV = "TCPWS_LISTEN_FD"  # an inherited listening socket to serve
NOTIFY_FD_ENV = "TCPWS_NOTIFY_FD"  # write one line here once ready, then close it
NAME_ENV = "TCPWS_NAME"  # the child's name in logs and heartbeats

# CLIENT SETNAME prefixes, so an operator (and the honcho redis entry) can
# tell our Redis connections apart.
TCP_CLIENT_PREFIX = "tcpws-tcp:"
WEB_CLIENT_PREFIX = "tcpws-web:"
