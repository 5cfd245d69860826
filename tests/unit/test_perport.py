"""--framing / --parse values: every port or PORT=CHOICE, flags over the
environment, one clear line for a bad value."""

from __future__ import annotations

import pytest

from tcpws import cli
from tcpws.payload import LF_PICTURE, data_b64, frame_text
from tcpws.perport import (
    PerPort,
    env_items,
    framing_choice,
    framing_item,
    parse_choice,
    parse_item,
)


def test_items() -> None:
    assert framing_item("octet-count") == (None, "octet-count")
    assert framing_item(" 6514 = Syslog ") == (6514, "syslog")
    assert parse_item("9000=syslog") == (9000, "syslog")


@pytest.mark.parametrize(("text", "reason"), [
    ("cobs", "unknown framing method (expected newline, octet-count, syslog or length32, "
             "or PORT=newline): 'cobs'"),
    ("x=newline", "not a TCP port: 'x'"),
    ("0=newline", "not a TCP port (out of range 1-65535): '0'"),
    ("8001=", "unknown framing method"),
])
def test_bad_framing_items_say_why(text: str, reason: str) -> None:
    with pytest.raises(cli.BadValue) as caught:
        framing_item(text)
    assert str(caught.value).startswith(reason)
    assert "\n" not in str(caught.value)


def test_bad_parser() -> None:
    with pytest.raises(cli.BadValue, match=r"unknown parser \(expected syslog, or PORT=syslog"):
        parse_item("json")


def test_per_port_wins_over_every_port() -> None:
    choice = PerPort.of([(None, "syslog"), (8002, "newline"), (8003, "length32")], "newline")
    assert [choice.for_port(p) for p in (8001, 8002, 8003)] == ["syslog", "newline",
                                                               "length32"]
    assert choice.to_args("--framing") == ["--framing", "syslog", "--framing", "8002=newline",
                                           "--framing", "8003=length32"]
    assert PerPort.of(env_items(",".join(choice.to_args("--framing")[1::2]),
                                framing_item)) == choice


def test_conflicts_are_errors_repeats_are_not() -> None:
    assert PerPort.of([(8001, "syslog"), (8001, "syslog")]).for_port(8001) == "syslog"
    with pytest.raises(cli.BadValue, match="given twice for port 8001"):
        PerPort.of([(8001, "syslog"), (8001, "newline")])
    with pytest.raises(cli.BadValue, match="given twice for every port"):
        PerPort.of([(None, "syslog"), (None, "newline")])


def test_flags_over_environment_and_defaults() -> None:
    assert framing_choice(None, "").for_port(1) == "newline"
    assert framing_choice(None, "octet-count, 7=length32").for_port(7) == "length32"
    assert framing_choice([(None, "syslog")], "octet-count").for_port(7) == "syslog"
    assert parse_choice(None, "").for_port(8001) is None
    assert parse_choice(None, "8001=syslog").for_port(8001) == "syslog"
    assert parse_choice([(None, "syslog")], "").for_port(1) == "syslog"


def test_argparse_reports_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.OneLineParser(prog="tcp_worker")
    parser.add_argument("--framing", action="append", type=framing_item)
    assert parser.parse_args(["--framing", "syslog", "--framing", "9=length32"]).framing == [
        (None, "syslog"), (9, "length32")]
    with pytest.raises(SystemExit):
        parser.parse_args(["--framing", "nope"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --framing: unknown framing method" in err


def test_payload_exact_bytes() -> None:
    assert data_b64(b"plain \xe2\x82\xac") is None
    assert data_b64(b"\xff\xfe") == "//4="
    assert data_b64(b"a\nb") == "YQpi"
    assert frame_text(b"a\nb\xff") == f"a{LF_PICTURE}b\ufffd"
