"""Framing methods other than plain newline: for any split of the stream into
reads, each yields the frames a model of its rules expects, keeps its
buffer bounded, and reports bad framing after the frames before it."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcp_worker.framing import Framer
from tcp_worker.framings import (
    CAUSES,
    FRAMING_METHODS,
    LENGTH32_OVER_LIMIT,
    NO_SPACE,
    NOT_DIGITS,
    OVER_LIMIT,
    StreamFramer,
    make_framer,
)
from tcpws.payload import LF_PICTURE, data_b64, frame_text, is_exact


@dataclass
class Outcome:
    """Everything a connection sees from its framer."""

    lines: list[str] = field(default_factory=list)
    exact: dict[int, bytes] = field(default_factory=dict)  # line index -> exact bytes
    empty: int = 0
    long: int = 0
    truncated: int = 0
    error: str | None = None

    def keep(self, raw: bytes) -> None:
        if not is_exact(raw):
            self.exact[len(self.lines)] = raw
        self.lines.append(frame_text(raw))


def header_bound(method: str, limit: int) -> int:
    """The most a framer may buffer: one unfinished frame and its header."""
    return {"octet-count": len(str(limit + 2)) + 1 + limit + 2,
            "syslog": len(str(limit + 2)) + 1 + limit + 2,
            "length32": 4 + limit, "newline": limit + 1}[method]


def run(method: str, limit: int, chunks: list[bytes],
        compiled: bool | None = None) -> tuple[Outcome, StreamFramer]:
    """Feed `chunks` as a connection does: stop at an error, else finish.
    `compiled`: which scan (see tcp_worker.framings.scan; None: the default)."""
    framer = make_framer(method, limit, compiled)
    out = Outcome()

    def take(text: str, count: int) -> None:
        assert (text.count("\n") + 1 if text else 0) == count  # one frame, one line
        for index, raw in framer.last_exact:
            out.exact[len(out.lines) + index] = raw
        out.lines.extend(text.split("\n") if count else [])

    for chunk in chunks:
        take(*framer.feed_block(chunk))
        assert framer.buffered_bytes <= header_bound(method, limit)
        if framer.error is not None:
            assert not framer.has_partial
            break
    else:
        take(*framer.finish_block())
        assert not framer.has_partial
    out.error = framer.error
    out.empty, out.long, out.truncated = (framer.dropped_empty, framer.dropped_long,
                                          framer.truncated)
    return out, framer


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    return [stream[a:b] for a, b in pairwise([0, *points, len(stream)])]


# Payload bytes rich in the interesting ones: newlines, CR, digits, space,
# invalid UTF-8, multibyte, U+240A itself.
_atoms = st.sampled_from([b"\n", b"\r", b"\r\n", b" ", b"7", b"a", b"xyz", b"\x00",
                          b"\xff", b"\xe2\x82", b"\xe2\x82\xac", "\u240a".encode()])
payloads = st.lists(st.one_of(_atoms, st.binary(max_size=6)), max_size=6).map(b"".join)
limits = st.integers(min_value=1, max_value=14)
cuts = st.lists(st.integers(min_value=0), max_size=12)


def octet_frame(msg: bytes, out: Outcome, limit: int) -> bytes:
    """`LEN SP MSG`, and what the model expects of it."""
    cut = msg[:-1] if msg.endswith(b"\n") else msg
    cut = cut[:-1] if msg.endswith(b"\r\n") else cut
    if out.error is None:
        if len(cut) > limit:
            out.error = OVER_LIMIT
        elif not cut:
            out.empty += 1
        else:
            out.keep(cut)
    return b"%d %s" % (len(msg), msg)


def line_frame(text: bytes, ending: bytes, out: Outcome, limit: int) -> bytes:
    """A newline-delimited frame (not starting with a digit) for `syslog`."""
    part = (text + ending)[:-1]
    part = part[:-1] if part.endswith(b"\r") else part
    if out.error is None and ending:
        if len(part) > limit:
            out.long += 1
        elif not part:
            out.empty += 1
        else:
            out.keep(part)
    return text + ending


@st.composite
def octet_streams(draw: st.DrawFn, mixed: bool,
                  counted_nl: bool = False) -> tuple[bytes, int, Outcome]:
    """`counted_nl`: every MSG ends with a counted "\n", as rsyslog sends."""
    limit = draw(limits)
    out = Outcome()
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        if mixed and draw(st.booleans()):
            text = draw(payloads.map(lambda b: b.replace(b"\n", b"")))
            if text[:1].isdigit():
                text = b"<" + text
            parts.append(line_frame(text, draw(st.sampled_from([b"\n", b"\r\n"])), out, limit))
        else:
            msg = draw(payloads)
            if counted_nl or draw(st.booleans()):
                msg += b"\n"  # rsyslog's omfwd counts the newline it appends
            parts.append(octet_frame(msg, out, limit))
    end = draw(st.sampled_from(["none", "cut", "not_digits", "no_space", "huge", "line"]))
    if out.error is None:
        if end == "cut":
            msg = draw(payloads.filter(lambda b: 0 < len(b) <= limit))
            whole = b"%d %s" % (len(msg), msg)
            parts.append(whole[: draw(st.integers(1, len(whole) - 1))])
            out.truncated = 1
        elif end == "not_digits" and not mixed:
            parts.append(draw(st.sampled_from([b"x", b" 5 hello", b"<13>1 x\n", b"-1 a"])))
            out.error = NOT_DIGITS
        elif end == "no_space":
            parts.append(draw(st.sampled_from([b"1x", b"1\n", b"2\t", b"1-2 a"])))
            out.error = NO_SPACE
        elif end == "huge":
            parts.append(b"%d " % draw(st.integers(limit + 3, 10**30)))
            out.error = OVER_LIMIT
        elif end == "line" and mixed:
            text = b"<" + draw(payloads.map(lambda b: b.replace(b"\n", b"")))
            tail = text[:-1] if text.endswith(b"\r") else text
            if len(tail) > limit:
                out.long += 1
            else:
                out.keep(tail)  # an unterminated newline frame is kept at EOF
            parts.append(text)
    if out.error is not None:
        parts.append(draw(st.binary(max_size=8)))  # never read
    return b"".join(parts), limit, out


@settings(max_examples=300, deadline=None)
@given(case=octet_streams(mixed=False), cuts=cuts)
def test_octet_count_any_split_gives_the_frames(case: tuple[bytes, int, Outcome],
                                                 cuts: list[int]) -> None:
    stream, limit, want = case
    assert run("octet-count", limit, split_at(stream, cuts))[0] == want


@settings(max_examples=300, deadline=None)
@given(data=st.data(), cuts=cuts)
@pytest.mark.parametrize("method", ["octet-count", "syslog"])
def test_counted_newline_frames_any_split(method: str, data: st.DataObject,
                                          cuts: list[int]) -> None:
    stream, limit, want = data.draw(octet_streams(mixed=method == "syslog", counted_nl=True))
    assert run(method, limit, split_at(stream, cuts))[0] == want


def test_counted_newline_frames_in_bulk_and_the_tail_after_them() -> None:
    msgs = [b"<13>1 - - - - - - line %d\n" % i for i in range(300)]
    wire = b"".join(b"%d %s" % (len(m), m) for m in msgs)
    for limit in (65536, 30):
        for step in (len(wire), 4096, 1000, 7):
            out, framer = run("octet-count", limit, [wire[i:i + step]
                                                     for i in range(0, len(wire), step)])
            assert out.lines == [m[:-1].decode() for m in msgs] and framer.error is None
    one = b"%d %s" % (len(msgs[0]), msgs[0])
    for bad in [b"1 \n", b"3 a\r\n", b"07 abcdef\n", one.replace(b"27", b"26"), b"abc\n"]:
        wire = one * 3 + bad + one
        want, _ = run("octet-count", 65536, [wire[i:i + 1] for i in range(len(wire))])
        assert run("octet-count", 65536, [wire])[0] == want


@settings(max_examples=300, deadline=None)
@given(case=octet_streams(mixed=True), cuts=cuts)
def test_syslog_any_split_gives_the_frames(case: tuple[bytes, int, Outcome],
                                           cuts: list[int]) -> None:
    stream, limit, want = case
    assert run("syslog", limit, split_at(stream, cuts))[0] == want


@st.composite
def length32_streams(draw: st.DrawFn) -> tuple[bytes, int, Outcome]:
    limit = draw(limits)
    out = Outcome()
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        msg = draw(payloads)
        if out.error is None:
            if len(msg) > limit:
                out.error = LENGTH32_OVER_LIMIT
            elif not msg:
                out.empty += 1
            else:
                out.keep(msg)
        parts.append(struct.pack(">I", len(msg)) + msg)
    end = draw(st.sampled_from(["none", "cut", "huge"]))
    if out.error is None and end == "cut":
        msg = draw(payloads.filter(lambda b: len(b) <= limit))
        whole = struct.pack(">I", len(msg)) + msg
        parts.append(whole[: draw(st.integers(1, len(whole) - 1))])
        out.truncated = 1
    elif out.error is None and end == "huge":
        parts.append(struct.pack(">I", draw(st.integers(limit + 1, 2**32 - 1))))
        out.error = LENGTH32_OVER_LIMIT
    return b"".join(parts), limit, out


@settings(max_examples=300, deadline=None)
@given(case=length32_streams(), cuts=cuts)
def test_length32_any_split_gives_the_frames(case: tuple[bytes, int, Outcome],
                                             cuts: list[int]) -> None:
    stream, limit, want = case
    assert run("length32", limit, split_at(stream, cuts))[0] == want


_line_bytes = st.lists(st.one_of(_atoms, st.binary(max_size=6)), max_size=40).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(stream=_line_bytes, cuts=cuts, limit=limits)
def test_newline_method_is_todays_framer_plus_exact_bytes(stream: bytes, cuts: list[int],
                                                          limit: int) -> None:
    got, framer = run("newline", limit, split_at(stream, cuts))
    plain = Framer(limit)
    lines = [plain.feed_block(stream), plain.finish_block()]
    assert got.lines == [line for b in lines if b.line_count for line in b.text.split("\n")]
    assert (framer.dropped_long, framer.dropped_empty) == (plain.dropped_long,
                                                           plain.dropped_empty)
    for index, raw in got.exact.items():
        assert raw.decode("utf-8", "replace") == got.lines[index]
        assert data_b64(raw) is not None
    for index, line in enumerate(got.lines):
        if index not in got.exact:
            assert "\ufffd" not in line or is_exact(line.encode())


# -- examples --

def test_logger_octet_count_frames_back_to_back() -> None:
    # util-linux 2.38.1: printf 'one\ntwo\n' | logger -n 127.0.0.1 -P PORT -T --octet-count
    wire = (b'94 <13>1 2026-12-04T17:58:29.263905+00:00 vm multi - - [timeQuality tzKnown="1" '
            b'isSynced="0"] one94 <13>1 2026-12-04T17:58:29.263980+00:00 vm multi - - '
            b'[timeQuality tzKnown="1" isSynced="0"] two')
    for method in ("octet-count", "syslog"):
        out, _ = run(method, 65536, [wire])
        assert [line[-3:] for line in out.lines] == ["one", "two"]
        assert all(line.startswith("<13>1 ") for line in out.lines)


def test_rsyslog_style_counted_newline_is_dropped() -> None:
    msg = b"<13>1 2026-12-03T05:52:55.104170+00:00 vm root - - - relayed line 1\n"
    out, _ = run("octet-count", 65536, [b"%d %s" % (len(msg), msg)] * 1)
    assert out.lines == [msg[:-1].decode()]


def test_syslog_method_mixes_newline_and_octet_frames() -> None:
    # logger -T --rfc3164 (newline), then logger -T --octet-count --rfc3164
    wire = (b"<76>Dec  4 17:58:29 vm cron[9707]: rfc3164 line\n"
            b"47 <34>Dec  4 17:58:29 vm sshd: octet counted 3164")
    out, _ = run("syslog", 65536, [wire[i:i + 1] for i in range(len(wire))])
    assert out.lines == ["<76>Dec  4 17:58:29 vm cron[9707]: rfc3164 line",
                         "<34>Dec  4 17:58:29 vm sshd: octet counted 3164"]


def test_a_frame_holding_a_newline_stays_one_line_with_its_exact_bytes() -> None:
    out, _ = run("octet-count", 100, [b"15 trace:\n  at x()"])
    assert out.lines == [f"trace:{LF_PICTURE}  at x()"]
    assert out.exact == {0: b"trace:\n  at x()"}


def test_bad_framing_comes_after_the_frames_before_it() -> None:
    for method, bad, cause in [("octet-count", b"abc\n", NOT_DIGITS),
                               ("octet-count", b"12x", NO_SPACE),
                               ("syslog", b"2026-12-04 not octet counted\n", NO_SPACE),
                               ("octet-count", b"65539 ", OVER_LIMIT),
                               ("octet-count", b"99999999999999999999", OVER_LIMIT),
                               ("length32", struct.pack(">I", 65537), LENGTH32_OVER_LIMIT)]:
        first = b"2 ok" if method != "length32" else b"\0\0\0\x02ok"
        framer = make_framer(method, 65536)
        block = framer.feed_block(first + bad + b"more after")
        assert (block.text, framer.error) == ("ok", cause), method
        assert framer.feed_block(b"5 later") == ("", 0)
        assert not framer.has_partial and framer.finish_block() == ("", 0)
        assert cause in CAUSES


def test_limit_counts_msg_without_its_newline() -> None:
    framer = make_framer("octet-count", 4)
    assert framer.feed_block(b"6 abcd\r\n5 abcd\n4 abcd") == ("abcd\nabcd\nabcd", 3)
    assert framer.feed_block(b"5 abcde") == ("", 0)
    assert framer.error == OVER_LIMIT


def test_syslog_method_drops_an_over_long_newline_frame_and_goes_on() -> None:
    framer = make_framer("syslog", 8)
    assert framer.feed_block(b"<1>" + b"x" * 100) == ("", 0)
    assert framer.buffered_bytes == 0 and framer.has_partial
    assert framer.feed_block(b"yyy\n3 abc<2>ok\n") == ("abc\n<2>ok", 2)
    assert framer.dropped_long == 1 and framer.error is None


def test_eof_truncated_and_abandon() -> None:
    framer = make_framer("octet-count", 100)
    assert framer.feed_block(b"10 half") == ("", 0)
    assert framer.has_partial and framer.buffered_bytes == 7
    assert framer.finish_block() == ("", 0)
    assert framer.truncated == 1
    framer = make_framer("length32", 100)
    framer.feed_block(b"\0\0")
    assert framer.abandon() == 1 and framer.dropped_tail == 1 and framer.truncated == 0


def test_empty_frames_are_counted_like_empty_lines() -> None:
    framer = make_framer("octet-count", 100)
    assert framer.feed_block(b"0 1 \n2 \r\n1 a") == ("a", 1)
    assert framer.dropped_empty == 3


def test_a_big_frame_in_small_reads_is_not_rescanned() -> None:
    framer = make_framer("octet-count", 1 << 20)
    body = b"z" * (1 << 20)
    wire = b"%d %s" % (len(body), body)
    got = [framer.feed_block(wire[i:i + 1000]) for i in range(0, len(wire), 1000)]
    assert [b.line_count for b in got if b.line_count] == [1]


def test_unknown_method() -> None:
    assert set(FRAMING_METHODS) == {"newline", "octet-count", "syslog", "length32"}
    with pytest.raises(ValueError, match="unknown framing method"):
        make_framer("cobs", 10)


# Captured from rsyslogd 8.2302.0 (Debian 12), imtcp in, relaying logger's
# lines with: action(type="omfwd" protocol="tcp" TCP_Framing="octet-counted"
# template="RSYSLOG_SyslogProtocol23Format"): MSG ends with a counted "\n".
RSYSLOG_RELAYED = (
    b'110 <156>1 2026-12-04T18:12:22.517340+00:00 vm relayed - M1 [timeQuality tzKnown="1" '
    b'isSynced="0"] relayed line 1\n60 <131>1 2026-12-04T18:12:22+00:00 vm old - - -  '
    b'relayed 3164\n')
# The same relay with omfwd's default template (RFC 3164 out, no "\n").
RSYSLOG_RELAYED_3164 = (b"45 <13>Dec  4 18:12:03 vm relayed relayed line 1"
                        b"41 <131>Dec  4 18:12:03 vm old: relayed 3164")


@pytest.mark.parametrize("method", ["octet-count", "syslog"])
def test_rsyslog_relay_frames(method: str) -> None:
    for wire, want in [
        (RSYSLOG_RELAYED, ['<156>1 2026-12-04T18:12:22.517340+00:00 vm relayed - M1 '
                           '[timeQuality tzKnown="1" isSynced="0"] relayed line 1',
                           "<131>1 2026-12-04T18:12:22+00:00 vm old - - -  relayed 3164"]),
        (RSYSLOG_RELAYED_3164, ["<13>Dec  4 18:12:03 vm relayed relayed line 1",
                                "<131>Dec  4 18:12:03 vm old: relayed 3164"])]:
        for reads in ([wire], [wire[i:i + 7] for i in range(0, len(wire), 7)]):
            out, framer = run(method, 65536, reads)
            assert out.lines == want and framer.error is None and not out.empty
