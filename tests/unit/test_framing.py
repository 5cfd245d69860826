"""Framing rules (docs/tcp_worker.md) and the property that chunking never
changes the result."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tcp_worker.framing import Block, Framer


def reference(stream: bytes, limit: int) -> tuple[list[str], int, int]:
    """The rules applied to the whole stream at once: (lines, long, empty)."""
    parts = stream.split(b"\n")
    tail = parts.pop()
    if tail:
        parts.append(tail)
    lines: list[str] = []
    long = empty = 0
    for part in parts:
        if part.endswith(b"\r"):
            part = part[:-1]
        if len(part) > limit:
            long += 1
        elif not part:
            empty += 1
        else:
            lines.append(part.decode("utf-8", "replace"))
    return lines, long, empty


def lines_of(block: Block) -> list[str]:
    return block.text.split("\n") if block.line_count else []


def feed(framer: Framer, data: bytes) -> list[str]:
    """One chunk's completed lines, as a list."""
    return lines_of(framer.feed_block(data))


def finish(framer: Framer) -> list[str]:
    """EOF's unterminated last line, as a list."""
    return lines_of(framer.finish_block())


def frame_chunks(chunks: list[bytes], limit: int) -> tuple[list[str], Framer]:
    framer = Framer(limit)
    out: list[str] = []
    for chunk in chunks:
        out.extend(feed(framer, chunk))
    out.extend(finish(framer))
    return out, framer


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    bounds = [0, *points, len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


# Bytes rich in the interesting ones: newlines, CR, invalid UTF-8, multibyte.
_atoms = st.sampled_from([b"\n", b"\r", b"\r\n", b"a", b"xyz", b"\x00", b"\xff",
                          b"\xe2\x82", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xc3"])
streams = st.lists(st.one_of(_atoms, st.binary(max_size=12)), max_size=60).map(b"".join)


@settings(max_examples=250, deadline=None)
@given(stream=streams, cuts=st.lists(st.integers(min_value=0), max_size=20),
       limit=st.integers(min_value=1, max_value=12))
def test_any_chunking_frames_like_the_whole_stream(stream: bytes, cuts: list[int],
                                                   limit: int) -> None:
    lines, framer = frame_chunks(split_at(stream, cuts), limit)
    want_lines, want_long, want_empty = reference(stream, limit)
    assert lines == want_lines
    assert framer.dropped_long == want_long
    assert framer.dropped_empty == want_empty


@settings(max_examples=200, deadline=None)
@given(stream=streams, limit=st.integers(min_value=1, max_value=12))
def test_byte_by_byte_equals_one_chunk(stream: bytes, limit: int) -> None:
    one = frame_chunks([stream], limit)[0]
    many = frame_chunks([stream[i:i + 1] for i in range(len(stream))], limit)[0]
    assert one == many


def test_lf_and_crlf_and_bare_cr() -> None:
    lines, framer = frame_chunks([b"a\nb\r\nc\rd\n\r\n\n"], 100)
    assert lines == ["a", "b", "c\rd"]
    assert framer.dropped_empty == 2


def test_line_ending_in_bare_cr_keeps_nothing_of_it_at_eof() -> None:
    lines, _ = frame_chunks([b"one\r"], 100)
    assert lines == ["one"]


def test_tail_without_newline_is_a_line_at_eof() -> None:
    framer = Framer(100)
    assert feed(framer, b"first\nsec") == ["first"]
    assert framer.has_partial
    assert feed(framer, b"ond") == []
    assert finish(framer) == ["second"]
    assert not framer.has_partial


def test_abandon_drops_and_counts_the_tail() -> None:
    framer = Framer(100)
    assert feed(framer, b"done\nhalf") == ["done"]
    assert framer.abandon() == 1
    assert framer.dropped_tail == 1
    assert finish(framer) == []


def test_over_long_line_is_dropped_and_the_stream_goes_on() -> None:
    framer = Framer(8)
    out: list[str] = []
    out += feed(framer, b"ok\n" + b"x" * 5)
    out += feed(framer, b"y" * 1000)  # now certainly too long: discarding
    assert not framer.buffered_bytes
    out += feed(framer, b"z" * 1000 + b"\nafter\n")
    assert out == ["ok", "after"]
    assert framer.dropped_long == 1


def test_one_mebibyte_line_then_normal_lines() -> None:
    framer = Framer(65536)
    out: list[str] = []
    big = b"q" * (1024 * 1024)
    for i in range(0, len(big), 65536):
        out += feed(framer, big[i:i + 65536])
    out += feed(framer, b"\nline1\nline2\n")
    assert out == ["line1", "line2"]
    assert framer.dropped_long == 1


def test_limit_is_exclusive_of_the_terminator() -> None:
    lines, framer = frame_chunks([b"12345\r\n123456\n1234\r\n"], 5)
    assert lines == ["12345", "1234"]
    assert framer.dropped_long == 1


def test_invalid_utf8_and_nul_are_replaced_not_fatal() -> None:
    lines, _ = frame_chunks([b"caf\xc3\xa9 \xff\xfe\x00end\n\xe2\x82\n"], 100)
    assert lines == ["café \ufffd\ufffd\x00end", "\ufffd"]


def test_multibyte_character_split_across_chunks() -> None:
    lines, _ = frame_chunks([b"price \xe2", b"\x82", b"\xac 5\n"], 100)
    assert lines == ["price € 5"]


def test_counts_for_acks_include_dropped_lines() -> None:
    framer = Framer(3)
    lines = feed(framer, b"a\n\ntoolong\nb\n")
    assert lines == ["a", "b"]
    assert framer.dropped_long + framer.dropped_empty == 2


@settings(max_examples=250, deadline=None)
@given(stream=streams, cuts=st.lists(st.integers(min_value=0), max_size=20),
       limit=st.integers(min_value=1, max_value=12))
def test_blocks_are_the_lines_joined(stream: bytes, cuts: list[int], limit: int) -> None:
    """feed_block/finish_block: each Block is its lines joined by "\\n", and
    the blocks of any chunking add up to the whole stream's lines."""
    framer = Framer(limit)
    blocks = [framer.feed_block(chunk) for chunk in split_at(stream, cuts)]
    blocks.append(framer.finish_block())
    want_lines, _, _ = reference(stream, limit)
    assert sum(b.line_count for b in blocks) == len(want_lines)
    assert all(b.line_count == (b.text.count("\n") + 1 if b.text else 0) for b in blocks)
    assert "\n".join(b.text for b in blocks if b.line_count) == "\n".join(want_lines)


@settings(max_examples=150, deadline=None)
@given(lengths=st.lists(st.integers(min_value=0, max_value=260), max_size=80),
       crlf=st.booleans(), limit=st.integers(min_value=64, max_value=200))
def test_long_lines_found_among_many_in_big_chunks(lengths: list[int], crlf: bool,
                                                   limit: int) -> None:
    """Lines around the limit (and limit + 1 with its "\\r") in chunks far
    bigger than the limit: the jumping scan finds exactly the long ones."""
    end = b"\r\n" if crlf else b"\n"
    stream = b"".join(b"%c" % (97 + i % 26) * n + end for i, n in enumerate(lengths))
    lines, framer = frame_chunks([stream], limit)
    want_lines, want_long, want_empty = reference(stream, limit)
    assert lines == want_lines
    assert (framer.dropped_long, framer.dropped_empty) == (want_long, want_empty)


@settings(max_examples=300, deadline=None)
@given(stream=streams, cuts=st.lists(st.integers(min_value=0), max_size=20),
       limit=st.integers(min_value=1, max_value=12))
def test_the_short_way_frames_like_feed_block(stream: bytes, cuts: list[int],
                                               limit: int) -> None:
    """feed_whole either answers exactly what feed_block would (the same
    lines, nothing dropped) or declines and changes nothing, so a connection
    trying it first frames any chunking like the whole stream."""
    framer, twin = Framer(limit), Framer(limit)
    lines: list[str] = []
    for chunk in split_at(stream, cuts):
        if not chunk:
            continue
        text = framer.feed_whole(chunk)
        want = twin.feed_block(chunk)
        if text is None:
            lines.extend(feed(framer, chunk))
        else:
            assert (text, chunk.count(b"\n")) == tuple(want)
            assert (twin.dropped_long, twin.dropped_empty) == (framer.dropped_long,
                                                               framer.dropped_empty)
            lines.extend(lines_of(want))
    lines.extend(finish(framer))
    want_lines, want_long, want_empty = reference(stream, limit)
    assert lines == want_lines
    assert (framer.dropped_long, framer.dropped_empty) == (want_long, want_empty)


def test_the_short_way_takes_a_plain_line_and_declines_the_rest() -> None:
    assert Framer(100).feed_whole(b"one line\n") == "one line"
    assert Framer(100).feed_whole(b"two\nlines\n") == "two\nlines"
    for declined in (b"no newline", b"crlf\r\n", b"\n", b"a\n\nb\n", b"\xff\n", b"x" * 101 + b"\n"):
        assert Framer(100).feed_whole(declined) is None
    framer = Framer(100)
    framer.feed_block(b"partial")
    assert framer.feed_whole(b" line\n") is None  # a tail is buffered: the long way
