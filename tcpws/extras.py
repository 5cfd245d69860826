"""What a line carries besides its text: `data_b64` (its exact bytes, when
`data` is not) and `syslog` (its parsed fields, on `--parse syslog` ports).

Made once per Block in the tcp worker (pure: no Redis here), stored with the
lines as one JSON list aligned with them (None for a line with nothing
extra, the whole list None for a Block with nothing extra: the common case
costs nothing), and added to each JSON envelope by the web."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from . import syslog
from .payload import data_b64

Extra = dict[str, Any]  # "data_b64": str and/or "syslog": dict | None
Extras = list[Extra | None]  # one per line of a Block or of a stored entry


def block_extras(text: str, count: int, exact: Iterable[tuple[int, bytes]],
                 parse_syslog: bool) -> Extras | None:
    """A Block's extras: `exact` is its framer's `last_exact`; with
    `parse_syslog` every line gets "syslog" (None when it is not syslog)."""
    out: Extras
    if parse_syslog:
        out = [{"syslog": syslog.parse(line)} for line in text.split("\n")] if count else []
    else:
        out = [None] * count
    for index, raw in exact:
        b64 = data_b64(raw)
        if b64 is not None:
            out[index] = {**(out[index] or {}), "data_b64": b64}
    return out if parse_syslog or any(out) else None


def join_extras(blocks: Sequence[tuple[int, Extras | None]]) -> Extras | None:
    """The extras of Blocks joined into one entry, as their texts are joined
    by "\\n": (line count, extras) per Block, in order."""
    if all(extras is None for _, extras in blocks):
        return None
    out: Extras = []
    for count, extras in blocks:
        out.extend(extras if extras is not None else [None] * count)
    return out


def encode(extras: Extras | None) -> bytes:
    """For storing with the entry (b"" when there are none)."""
    return b"" if extras is None else orjson.dumps(extras)


def decode(stored: bytes | str) -> Extras | None:
    """The stored field back (None when empty or absent)."""
    if not stored:
        return None
    value = orjson.loads(stored)
    return value if isinstance(value, list) else None


def envelope_json(extra: Extra | None) -> str:
    """Fields to append to one line's JSON envelope, each as `,"key":value`
    ("" for none); in a fixed order: data_b64, then syslog."""
    if not extra:
        return ""
    parts = []
    if "data_b64" in extra:
        parts.append(',"data_b64":' + orjson.dumps(extra["data_b64"]).decode())
    if "syslog" in extra:
        parts.append(',"syslog":' + orjson.dumps(extra["syslog"]).decode())
    return "".join(parts)


def severity(extra: Extra | None) -> int | None:
    """The line's syslog severity, for `severity=N` (None: not known)."""
    fields = extra.get("syslog") if extra else None
    return fields["severity"] if fields else None
