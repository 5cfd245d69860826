"""RFC 5424 and RFC 3164 syslog lines as fields (pure; never raises).

Hand-written: no syslog parser on PyPI is maintained (the candidates have
seen no release for years), and the two grammars fit in a page.

`parse(line)` returns None when the line is neither (no `<PRI>` of 0..191
in front), else a dict: `facility` and `severity` (numbers), `timestamp` (as
sent), `hostname`, `app`, `procid`, `msgid`, `sd` (RFC 5424 structured data
as {id: {name: value}}, {} when none) and `msg`; RFC 5424's nil value `-`
is None, and RFC 3164 has no `msgid` (None) and no `sd` ({}). RFC 3164 is
taken as senders write it: `Mmm dd hh:mm:ss` (day padded with a space) or
an ISO time stamp, then a hostname unless the next word is already the tag,
then `TAG[PID]: MSG` (TAG is `app`, PID `procid`); what does not fit is
`msg`."""

from __future__ import annotations

import re
from typing import Any

MAX_PRI = 191  # facility 23 (local7), severity 7: anything above is not syslog
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

_PRI = re.compile(r"<(\d{1,3})>")
# VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP
_HEADER_5424 = re.compile(r"[1-9]\d{0,2} (-|\d{4}-\d\d-\d\dT\S+) (\S+) (\S+) (\S+) (\S+) ")
_SD_PARAM = re.compile(r' ([^\s="\]]+)="((?:[^"\\]|\\.)*)"', re.DOTALL)  # NAME="VALUE"
_SD_ELEMENT = re.compile(r'\[([^\s="\]]+)((?:' + _SD_PARAM.pattern + r')*)\]', re.DOTALL)
_SD_ESCAPE = re.compile(r'\\(["\\\]])')
_TIME_3164 = re.compile(r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) +")
_WORD = re.compile(r"(\S+) +")
_TAG = re.compile(r"([^\s\[\]:]{1,64})(?:\[([^\]\s]*)\])?:(?: |$)")
_BOM = "\ufeff"


def parse(line: str | bytes) -> dict[str, Any] | None:
    """The syslog fields of one line, or None when it is not syslog."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    pri = _PRI.match(line)
    if pri is None or int(pri.group(1)) > MAX_PRI:
        return None
    value = int(pri.group(1))
    head = {"facility": value >> 3, "severity": value & 7}
    pos = pri.end()
    header = _HEADER_5424.match(line, pos)
    if header is not None:
        return head | _rfc5424(line, header)
    return head | _rfc3164(line, pos)


def _nil(text: str) -> str | None:
    return None if text == "-" else text


def _rfc5424(line: str, header: re.Match[str]) -> dict[str, Any]:
    timestamp, hostname, app, procid, msgid = map(_nil, header.groups())
    pos = header.end()
    sd, end = _structured_data(line, pos)
    if end < len(line) and line[end] != " ":
        sd, end = None, pos - 1  # not structured data after all: all of it is MSG
    msg = line[end + 1 :]
    if msg.startswith(_BOM):
        msg = msg[1:]
    return {"timestamp": timestamp, "hostname": hostname, "app": app, "procid": procid,
            "msgid": msgid, "sd": sd or {}, "msg": msg}


def _structured_data(line: str, pos: int) -> tuple[dict[str, dict[str, str]] | None, int]:
    """STRUCTURED-DATA at `pos`: ({id: {name: value}}, where it ends), or
    (None, pos) when what is there is not well formed."""
    if line.startswith("-", pos):
        return {}, pos + 1
    elements: dict[str, dict[str, str]] = {}
    start = pos
    while (element := _SD_ELEMENT.match(line, pos)) is not None:
        params = elements.setdefault(element.group(1), {})
        for name, value in _SD_PARAM.findall(element.group(2)):
            params[name] = _SD_ESCAPE.sub(r"\1", value) if "\\" in value else value
        pos = element.end()
    if pos == start:
        return None, start
    return elements, pos


def _rfc3164(line: str, pos: int) -> dict[str, Any]:
    timestamp = hostname = app = procid = None
    stamp = _TIME_3164.match(line, pos)
    if stamp is not None:
        timestamp = stamp.group().rstrip(" ")
        pos = stamp.end()
        word = _WORD.match(line, pos)
        if word is not None and not _TAG.match(word.group()):
            hostname = word.group(1)
            pos = word.end()
    tag = _TAG.match(line, pos)
    if tag is not None:
        app, procid = tag.group(1), tag.group(2)
        pos = tag.end()
    return {"timestamp": timestamp, "hostname": hostname, "app": app, "procid": procid,
            "msgid": None, "sd": {}, "msg": line[pos:]}


def severity_limit(text: str) -> int:
    """A `severity=N` value: 0 (emerg) to 7 (debug); ValueError otherwise."""
    if len(text) != 1 or not "0" <= text <= "7":
        raise ValueError(f"severity must be a number from 0 (emerg) to 7 (debug), not {text!r}")
    return int(text)


def at_most(fields: dict[str, Any] | None, limit: int) -> bool:
    """Whether a line with these parsed fields passes `severity=limit`
    (N or worse; a line that is not syslog never does)."""
    return fields is not None and fields["severity"] <= limit
