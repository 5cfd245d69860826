"""The compiled scans of the length-prefixed framers (tcp_worker/framings/
_scan.c) against their pure-Python reference (scan.py): the same frames and
stopping point for any bytes, and the same framer outcome — frames, exact
bytes, counters, every bad-framing cause — for any stream, split and limit.
And this install uses the compiled one."""

from __future__ import annotations

import logging
import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcp_worker.framings import CAUSES, scan
from tcp_worker.framings.length32 import Length32Framer
from tcp_worker.framings.octet import OctetFramer
from tests.unit.test_framings import (
    Outcome,
    cuts,
    length32_streams,
    octet_streams,
    run,
    split_at,
)


def test_this_install_uses_the_compiled_scan() -> None:
    # `pip install -e .` (make's install step) builds it: a failed build must not pass silently.
    assert scan.implementation() == "compiled", scan.WHY_NOT


def test_framers_pick_the_compiled_scan_by_default(caplog: pytest.LogCaptureFixture) -> None:
    assert OctetFramer(10)._fast is scan.COMPILED_OCTET
    assert OctetFramer(10, mixed=True)._fast is scan.COMPILED_OCTET
    assert OctetFramer(10, compiled=False)._fast is None  # pure: counted_lines, then the loop
    assert Length32Framer(10)._fast is scan.COMPILED_LENGTH32
    assert Length32Framer(10, compiled=False)._fast is scan.length32_frames
    scan._logged = False
    with caplog.at_level(logging.INFO, logger=scan.__name__):
        scan.log_implementation()
        scan.log_implementation()
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "octet-count/length32 framing: compiled scan"]


def test_without_the_compiled_scan_the_framers_use_the_pure_one() -> None:
    code = ("import sys; sys.modules['tcp_worker.framings._scan'] = None\n"
            "from tcp_worker.framings import make_framer, scan\n"
            "assert scan.implementation() == 'pure', scan.COMPILED\n"
            "scan.log_implementation()\n"
            "f = make_framer('octet-count', 10)\n"
            "assert f.feed_block(b'2 ok3 abc') == ('ok\\nabc', 2)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "pure-Python scan" in done.stderr


# Bytes rich in what the scans look at: digits, spaces, CR/LF, and headers.
_atoms = st.sampled_from([b"0", b"1", b"5", b"9", b"12", b" ", b"\n", b"\r", b"\r\n", b"a",
                          b"\x00", b"\xff", b"3 abc", b"2 a\n", b"1 \n", b"4 ab\r\n",
                          b"\0\0\0\x01", b"\0\0\0\x03", b"\0\0\0\0", b"\xff\xff\xff\xff"])
junk = st.lists(st.one_of(_atoms, st.binary(max_size=8)), max_size=30).map(b"".join)
limits = st.integers(min_value=1, max_value=20)


@settings(max_examples=1000, deadline=None)
@given(data=junk, pos=st.integers(0, 40), limit=limits, reach=st.integers(1, 6))
def test_octet_scan_compiled_is_pure(data: bytes, pos: int, limit: int, reach: int) -> None:
    pure: list[bytes] = []
    compiled: list[bytes] = [b"before"]
    assert scan.COMPILED_OCTET is not None
    got = scan.COMPILED_OCTET(data, pos, limit, reach, compiled)
    assert (got, compiled[1:]) == (scan.octet_frames(data, pos, limit, reach, pure), pure)
    assert compiled[0] == b"before"


@settings(max_examples=1000, deadline=None)
@given(data=junk, pos=st.integers(0, 40), limit=st.integers(1, 2**33))
def test_length32_scan_compiled_is_pure(data: bytes, pos: int, limit: int) -> None:
    pure: list[bytes] = []
    compiled: list[bytes] = []
    assert scan.COMPILED_LENGTH32 is not None
    got = scan.COMPILED_LENGTH32(data, pos, limit, compiled)
    assert (got, compiled) == (scan.length32_frames(data, pos, limit, pure), pure)


def test_scans_take_any_bytes_like_and_never_read_past_the_end() -> None:
    assert scan.COMPILED_OCTET is not None and scan.COMPILED_LENGTH32 is not None
    frames: list[bytes] = []
    assert scan.COMPILED_OCTET(memoryview(b"3 abc9 abc"), 0, 10, 3, frames) == 5
    assert scan.COMPILED_OCTET(bytearray(b"3 ab"), 0, 10, 3, frames) == 0  # unfinished
    assert scan.COMPILED_OCTET(b"9" * 40 + b" x", 0, 10, 50, frames) == 0  # huge LEN
    assert scan.COMPILED_LENGTH32(b"\0\0\0\x02ok\0\0\0", 0, 10, frames) == 6
    assert scan.COMPILED_LENGTH32(b"\0\0\0\x02ok", 99, 10, frames) == 99
    assert frames == [b"abc", b"ok"]
    with pytest.raises(TypeError):
        scan.COMPILED_OCTET("3 abc", 0, 10, 3, frames)


def _same(method: str, limit: int, chunks: list[bytes]) -> Outcome:
    compiled, c_framer = run(method, limit, chunks, compiled=True)
    pure, p_framer = run(method, limit, chunks, compiled=False)
    assert compiled == pure
    assert (c_framer.dropped_tail, c_framer.buffered_bytes) == (p_framer.dropped_tail,
                                                                p_framer.buffered_bytes)
    return compiled


@settings(max_examples=500, deadline=None)
@given(stream=junk, cuts=cuts, limit=limits,
       method=st.sampled_from(["octet-count", "syslog", "length32"]))
def test_framers_compiled_is_pure_for_any_bytes(stream: bytes, cuts: list[int], limit: int,
                                                method: str) -> None:
    _same(method, limit, split_at(stream, cuts))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), cuts=cuts, method=st.sampled_from(["octet-count", "syslog"]),
       counted_nl=st.booleans())
def test_octet_framers_compiled_is_pure_for_modelled_streams(
        data: st.DataObject, cuts: list[int], method: str, counted_nl: bool) -> None:
    # The model's streams end with every cause of bad framing (and a cut frame).
    stream, limit, want = data.draw(octet_streams(mixed=method == "syslog",
                                                  counted_nl=counted_nl))
    assert _same(method, limit, split_at(stream, cuts)) == want


@settings(max_examples=300, deadline=None)
@given(case=length32_streams(), cuts=cuts)
def test_length32_compiled_is_pure_for_modelled_streams(case: tuple[bytes, int, Outcome],
                                                        cuts: list[int]) -> None:
    stream, limit, want = case
    assert _same("length32", limit, split_at(stream, cuts)) == want


@pytest.mark.parametrize(("method", "bad", "cause"), [
    ("octet-count", b"abc\n", "not_digits"), ("octet-count", b"12x", "no_space"),
    ("syslog", b"2026-12-04 x\n", "no_space"), ("octet-count", b"65539 ", "over_limit"),
    ("octet-count", b"9" * 30, "over_limit"),
    ("length32", struct.pack(">I", 65537), "length32_over_limit")])
def test_every_cause_is_the_same_compiled_and_pure(method: str, bad: bytes, cause: str) -> None:
    first = b"\0\0\0\x02ok" * 3 if method == "length32" else b"2 ok" * 3
    wire = first + bad + b"more after"
    for step in (len(wire), 3, 1):
        out = _same(method, 65536, [wire[i:i + step] for i in range(0, len(wire), step)])
        assert (out.lines, out.error) == (["ok"] * 3, cause) and cause in CAUSES
