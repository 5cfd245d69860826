"""A frame's bytes as the envelope carries them: `data` (text, one line) and,
when that text is not exactly the bytes, `data_b64` (the exact bytes).

A frame is one line everywhere downstream (history entries hold lines joined
by "\\n"; ids, `since=`, acks and counts split on it), so a "\\n" inside a
frame (octet-counted and length-prefixed frames may hold one) is shown in
`data` as U+240A SYMBOL FOR LINE FEED, a printable picture of it. Bytes that
are not UTF-8 are shown as U+FFFD, as for every line. In both cases
`data_b64` gives back the exact bytes; otherwise it is absent."""

from __future__ import annotations

import base64

LF_PICTURE = "\u240a"  # what a "\n" inside a frame looks like in `data`


def frame_text(raw: bytes) -> str:
    """`data` for one frame: UTF-8 with replacement, "\\n" as LF_PICTURE."""
    return raw.decode("utf-8", "replace").replace("\n", LF_PICTURE)


def is_exact(raw: bytes) -> bool:
    """Whether `frame_text(raw)` gives back `raw` exactly (UTF-8, no "\\n")."""
    if b"\n" in raw:
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def data_b64(raw: bytes) -> str | None:
    """The envelope's `data_b64` for a frame's bytes, or None when `data`
    (`frame_text(raw)`) already is exactly them."""
    if is_exact(raw):
        return None
    return base64.b64encode(raw).decode("ascii")
