"""The syslog parser: real senders' lines, messages it builds round-trip,
and arbitrary input never raises."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpws.syslog import at_most, parse, severity_limit

# Captured from util-linux 2.38.1 `logger -n 127.0.0.1 -P PORT -T ...` with a
# throwaway TCP listener (the bytes each connection sent, newline removed).
LOGGER_5424_SD = (
    b'<163>1 2026-12-04T17:58:37.902286+00:00 vm myapp 9978 ID47 [timeQuality tzKnown="1" '
    b'isSynced="0"][exampleSDID@32473 iut="3" eventSource="Appl\\]ica\\"tion"] rfc5424 with sd')
# ... --rfc5424 -t myapp -i --msgid ID47 --sd-id exampleSDID@32473 --sd-param 'iut="3"'
#     --sd-param 'eventSource="Appl\]ica\"tion"' -p local4.err "rfc5424 with sd"
LOGGER_5424 = (b'<13>1 2026-12-04T17:58:29.251005+00:00 vm root - - [timeQuality tzKnown="1" '
               b'isSynced="0"] plain 5424')  # ... --rfc5424 -p user.notice "plain 5424"
LOGGER_3164 = b"<76>Dec  4 17:58:29 vm cron[9707]: rfc3164 line"  # --rfc3164 -t cron -i
LOGGER_3164_NO_PID = b"<14>Dec  4 17:58:37 vm root: no tag given"  # --rfc3164 -p user.info
LOGGER_OCTET_3164 = b"<34>Dec  4 17:58:29 vm sshd: octet counted 3164"  # --octet-count


def test_logger_rfc5424_with_structured_data() -> None:
    assert parse(LOGGER_5424_SD) == {
        "facility": 20, "severity": 3, "timestamp": "2026-12-04T17:58:37.902286+00:00",
        "hostname": "vm", "app": "myapp", "procid": "9978", "msgid": "ID47",
        "sd": {"timeQuality": {"tzKnown": "1", "isSynced": "0"},
               "exampleSDID@32473": {"iut": "3", "eventSource": 'Appl]ica"tion'}},
        "msg": "rfc5424 with sd"}


def test_logger_rfc5424_nil_fields_are_none() -> None:
    got = parse(LOGGER_5424.decode())
    assert got is not None
    assert (got["facility"], got["severity"], got["app"], got["procid"], got["msgid"],
            got["msg"]) == (1, 5, "root", None, None, "plain 5424")


def test_logger_rfc3164() -> None:
    assert parse(LOGGER_3164) == {
        "facility": 9, "severity": 4, "timestamp": "Dec  4 17:58:29", "hostname": "vm",
        "app": "cron", "procid": "9707", "msgid": None, "sd": {}, "msg": "rfc3164 line"}
    no_pid = parse(LOGGER_3164_NO_PID)
    assert no_pid is not None and (no_pid["app"], no_pid["procid"]) == ("root", None)
    octet = parse(LOGGER_OCTET_3164)
    assert octet is not None and (octet["severity"], octet["app"]) == (2, "sshd")


def test_rfc5424_examples_from_the_rfc() -> None:
    got = parse("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
                "\ufeff'su root' failed for lonvick on /dev/pts/8")
    assert got is not None
    assert (got["facility"], got["severity"], got["sd"], got["msg"]) == (
        4, 2, {}, "'su root' failed for lonvick on /dev/pts/8")
    got = parse('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
                '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
                '[examplePriority@32473 class="high"]')
    assert got is not None and got["msg"] == "" and got["sd"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"}}


def test_escapes_in_sd_values() -> None:
    got = parse(r'<13>1 - - - - - [a b="x\"y\\z\]w\n"] m')
    assert got is not None and got["sd"] == {"a": {"b": 'x"y\\z]w\\n'}}


def test_rfc3164_without_hostname_and_without_time() -> None:
    got = parse("<13>Dec  3 05:53:41 sshd[12]: Accepted key")
    assert got is not None and (got["hostname"], got["app"], got["procid"],
                                got["msg"]) == (None, "sshd", "12", "Accepted key")
    got = parse("<13>just text")
    assert got is not None and (got["timestamp"], got["app"], got["msg"]) == (
        None, None, "just text")


def test_not_syslog() -> None:
    for line in ["plain text", "", "<>x", "<192>1 - - - - - -", "<1000>x", "<13", "13> x",
                 " <13>x"]:
        assert parse(line) is None, line


def test_broken_structured_data_is_message_text() -> None:
    got = parse('<13>1 - host app - - [unterminated a="1" rest')
    assert got is not None and got["sd"] == {} and got["msg"] == '[unterminated a="1" rest'
    assert got["hostname"] == "host"


# -- properties --

@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_never_raises_on_anything(line: bytes | str) -> None:
    got = parse(line)
    assert got is None or 0 <= got["severity"] <= 7


_tails = st.text(st.sampled_from('<>[]"\\= -1a\n\t\ufeff:'), max_size=40)


@settings(max_examples=500, deadline=None)
@given(head=st.sampled_from(["<13>", "<13>1 ", "<13>1 - - - - - ", "<13>1 - - - - - [",
                             '<13>1 - - - - - [a b="', "<0>Dec  4 17:58:29 ", "<191>"]),
       tail=_tails)
def test_never_raises_near_the_grammar(head: str, tail: str) -> None:
    got = parse(head + tail)
    assert got is not None and isinstance(got["msg"], str)


_token = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
_nil_or = st.one_of(st.just(None), _token.filter(lambda t: t != "-"))
_sd_name = st.text(st.characters(min_codepoint=33, max_codepoint=126,
                                 blacklist_characters='= ]"'), min_size=1, max_size=10)
_sd = st.dictionaries(_sd_name, st.dictionaries(_sd_name, st.text(max_size=10), max_size=3),
                      max_size=3)
_iso = st.datetimes().map(lambda d: d.isoformat() + "Z")
_msg = st.text(max_size=30).filter(lambda m: not m.startswith("\ufeff"))


def _sd_text(sd: dict[str, dict[str, str]]) -> str:
    if not sd:
        return "-"
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
    return "".join("[" + sid + "".join(f' {k}="{esc(v)}"' for k, v in p.items()) + "]"
                   for sid, p in sd.items())


@st.composite
def rfc5424(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    pri = draw(st.integers(0, 191))
    fields: dict[str, Any] = {"facility": pri >> 3, "severity": pri & 7,
              "timestamp": draw(st.one_of(st.just(None), _iso)),
              "hostname": draw(_nil_or), "app": draw(_nil_or), "procid": draw(_nil_or),
              "msgid": draw(_nil_or), "sd": draw(_sd), "msg": draw(_msg)}
    nil = [fields[k] or "-" for k in ("timestamp", "hostname", "app", "procid", "msgid")]
    line = f"<{pri}>1 {' '.join(nil)} {_sd_text(fields['sd'])}"
    if fields["msg"] or draw(st.booleans()):
        line += " " + ("\ufeff" if draw(st.booleans()) else "") + fields["msg"]
    return line, fields


_months = st.sampled_from("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
_time3164 = st.builds(lambda m, d, h, mi, s: f"{m} {d:2d} {h:02d}:{mi:02d}:{s:02d}", _months,
                      st.integers(1, 31), st.integers(0, 23), st.integers(0, 59),
                      st.integers(0, 59))
_host = st.text(st.characters(min_codepoint=33, max_codepoint=126,
                              blacklist_characters="[]:"), min_size=1, max_size=12)
_tag = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABC0123456789-_./"), min_size=1,
               max_size=32)


@st.composite
def rfc3164(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    pri = draw(st.integers(0, 191))
    fields = {"facility": pri >> 3, "severity": pri & 7, "timestamp": draw(_time3164),
              "hostname": draw(st.one_of(st.just(None), _host)), "app": draw(_tag),
              "procid": draw(st.one_of(st.just(None), st.from_regex(r"\A\d{1,7}\Z"))),
              "msgid": None, "sd": {}, "msg": draw(st.text(max_size=30))}
    host = f"{fields['hostname']} " if fields["hostname"] else ""
    pid = f"[{fields['procid']}]" if fields["procid"] else ""
    return f"<{pri}>{fields['timestamp']} {host}{fields['app']}{pid}: {fields['msg']}", fields


@settings(max_examples=500, deadline=None)
@given(case=st.one_of(rfc5424(), rfc3164()))
def test_built_messages_round_trip(case: tuple[str, dict[str, Any]]) -> None:
    line, fields = case
    assert parse(line) == fields
    assert parse(line.encode()) == fields


def test_rsyslog_relayed_lines() -> None:
    # rsyslogd 8.2302.0 relaying logger's lines with RSYSLOG_SyslogProtocol23Format
    got = parse('<156>1 2026-12-04T18:12:22.517340+00:00 vm relayed - M1 [timeQuality '
                'tzKnown="1" isSynced="0"] relayed line 1')
    assert got is not None and (got["facility"], got["severity"], got["app"], got["msgid"],
                                got["procid"], got["msg"]) == (19, 4, "relayed", "M1", None,
                                                               "relayed line 1")
    got = parse("<131>1 2026-12-04T18:12:22+00:00 vm old - - -  relayed 3164")
    assert got is not None and (got["severity"], got["app"], got["sd"], got["msg"]) == (
        3, "old", {}, " relayed 3164")


def test_severity_filter() -> None:
    assert [severity_limit(str(n)) for n in range(8)] == list(range(8))
    for bad in ["8", "-1", "03", "err", "", " 3"]:
        with pytest.raises(ValueError, match=r"from 0 \(emerg\) to 7 \(debug\)"):
            severity_limit(bad)
    err, info = parse(LOGGER_5424_SD), parse(LOGGER_5424)
    assert at_most(err, 3) and not at_most(info, 3) and at_most(info, 5)
    assert not at_most(parse("plain"), 7)
