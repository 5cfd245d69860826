"""`python -m tcpws.tail URL`: print every line of a tcpws stream as it
arrives, over `/ws` (`ws://`, `wss://`) or `/sse` (`http://`, `https://`).

It always reads format=json, so it knows each line's id (without --since it
starts at the `last_id` of the web's /api/status, so even a first
connection that breaks before a line arrives resumes): on any close
except 1008 (or an HTTP 4xx) it reconnects with exponential back-off and
`since=` the last id it printed, and drops any line at or before that id,
so a restart of the web process neither loses nor repeats a line. One line
on stderr per reconnect. Ctrl-C exits 0; a closed stdout (`| head`) ends it
quietly; 1008 exits 1 with the reason.

Lines are untrusted: printed to a terminal, C0/C1 control characters (tab
aside) are shown escaped (`\\x1b`), as an ESC sequence could rewrite the
screen; into a pipe or with --raw they are written as they are."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

import httpx
import orjson
from websockets.exceptions import InvalidHandshake, InvalidURI

from tcpws import cli, syslog
from tcpws.backoff import Backoff
from tcpws.protocol import parse_since
from tcpws.shards import CURSOR_SEP, is_cursor
from tcpws.tail_streams import Closed, reader_for, stream_head, stream_url

PROG = "python -m tcpws.tail"
CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if c != 0x09}


Key = tuple[tuple[int, int], int]


def id_key(text: str) -> Key | None:
    """A line id as something that orders within its TCP port (an entry id
    sorts after its lines); None for a cursor over shards (what a frame's last
    line carries with several shards), which orders nothing by itself."""
    if is_cursor(text):
        return None
    sid, index = parse_since(text)
    return sid, index if index >= 0 else sys.maxsize


def check_since(text: str) -> None:
    """ValueError unless `text` is a line id or a cursor over shards."""
    for part in text.split(CURSOR_SEP):
        parse_since(part)


class Printer:
    """Writes each new line once, in id order per TCP port (a port's lines
    are in one stream; ports on different shards have ids that do not order
    against each other); remembers the last id, the resume point."""

    def __init__(self, out: IO[str], as_json: bool, escape: bool, since: str | None) -> None:
        self.out = out
        self.as_json = as_json
        self.escape = escape
        self.last_id: str | None = None
        self._floor: Key | None = None  # a plain since= (one stream): every port is past it
        self._last: dict[Any, Key] = {}
        self.start_at(since)

    def start_at(self, since: str | None) -> None:
        """Resume from `since` (printed nothing yet)."""
        if since:
            self.last_id, self._floor = since, id_key(since)

    def frame(self, envelopes: list[dict[str, Any]]) -> None:
        parts: list[str] = []
        for item in envelopes:
            key, port = id_key(item["id"]), item.get("port")
            last = self._last.get(port, self._floor)
            if key is not None and last is not None and key <= last:
                continue  # already printed before a reconnect
            if key is not None:
                self._last[port] = key
            self.last_id = item["id"]
            text = orjson.dumps(item).decode() if self.as_json else item["data"]
            parts.append(text.translate(CONTROLS) if self.escape else text)
        if parts:
            self.out.write("\n".join(parts) + "\n")
            self.out.flush()


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    env = environ.get
    p = cli.OneLineParser(prog=PROG, description="print the lines of a tcpws stream; "
                          "reconnects and resumes by itself")
    p.add_argument("url", help="ws://HOST:PORT/ws, wss://..., http://HOST:PORT/sse or https://...")
    p.add_argument("--json", action="store_true",
                   default=cli.boolean(env("TCPWS_TAIL_JSON", "false")),
                   help="print each line's JSON envelope (id, port, peer, ts, data) "
                        "(TCPWS_TAIL_JSON)")
    p.add_argument("--since", default=env("TCPWS_TAIL_SINCE") or None,
                   help="start after this id (default: live) (TCPWS_TAIL_SINCE)")
    p.add_argument("--port", default=env("TCPWS_TAIL_PORT") or None,
                   help="only lines from these TCP ports, comma list (TCPWS_TAIL_PORT)")
    p.add_argument("--severity", default=env("TCPWS_TAIL_SEVERITY") or None,
                   help="only syslog lines of this severity or worse, 0-7 (3: errors); "
                        "lines without one are left out (TCPWS_TAIL_SEVERITY)")
    p.add_argument("--token", default=env("TCPWS_WS_TOKEN") or None,
                   help="the web's --ws-token, sent as Authorization: Bearer (TCPWS_WS_TOKEN)")
    p.add_argument("--raw", action="store_true",
                   default=cli.boolean(env("TCPWS_TAIL_RAW", "false")),
                   help="write control characters as they are, even to a terminal "
                        "(TCPWS_TAIL_RAW)")
    ns = p.parse_args(list(argv))
    try:
        if ns.since:
            check_since(ns.since)
        if ns.severity:
            syslog.severity_limit(ns.severity)
        stream_url(ns.url, ns.since, ns.port, ns.severity)
    except ValueError as exc:
        p.error(str(exc))
    return ns


async def tail(ns: argparse.Namespace, printer: Printer, err: IO[str]) -> int:
    """Read, print, reconnect; returns only after a 1008 (exit 1)."""
    read = reader_for(ns.url)
    if printer.last_id is None:
        printer.start_at(await stream_head(ns.url, ns.token))
    backoff = Backoff(base=0.5, cap=10.0, reset_after=5.0)
    while True:
        started = time.monotonic()
        try:
            url = stream_url(ns.url, printer.last_id, ns.port, ns.severity)
            # aclosing: the connection is closed here, in this task, even when
            # printing fails (a closed stdout), not by asyncio.run's clean-up.
            async with contextlib.aclosing(read(url, ns.token)) as frames:
                async for envelopes in frames:
                    printer.frame(envelopes)
        except Closed as closed:
            if closed.final:
                err.write(f"tail: closed by the server: {closed}\n")
                return 1
            why = f"closed {closed}"
        except BrokenPipeError:
            raise  # our stdout, not the connection: main() ends quietly
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, httpx.HTTPError) as exc:
            why = str(exc) or type(exc).__name__
        backoff.succeeded(ran_for=time.monotonic() - started)
        delay = backoff.next_delay()
        err.write(f"tail: {why}; reconnecting in {delay:.1f}s from "
                  f"{printer.last_id or 'live'}\n")
        err.flush()
        await asyncio.sleep(delay)


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(sys.argv[1:] if argv is None else argv, os.environ)
    escape = not ns.raw and sys.stdout.isatty()
    printer = Printer(sys.stdout, ns.json, escape, ns.since)
    try:
        return asyncio.run(tail(ns, printer, sys.stderr))
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and Python's
        # own flush of stdout at exit must not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
