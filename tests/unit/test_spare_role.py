"""The role a supervisor hands a spare (tcpws.spare.Role): it survives its
encoding, and anything else is refused with a reason."""

from __future__ import annotations

import pytest

from tcpws.spare import Role


def test_role_round_trip_and_module() -> None:
    role = Role(("/usr/bin/python3", "-m", "tcp_worker", "--port", "8001"),
                {"TCPWS_NAME": "tcp.8001.1", "PORT": ""}, (5, 7))
    assert Role.decode(role.encode()) == role
    assert role.module() == "tcp_worker"
    assert Role(("python3", "script.py"), {}).module() is None


@pytest.mark.parametrize("data", [b"", b"[]", b'{"argv": [1], "env": {}, "close_fds": []}',
                                  b'{"argv": [], "env": {"A": 1}, "close_fds": []}',
                                  b'{"argv": [], "env": {}}'])
def test_a_bad_role_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"^bad role"):
        Role.decode(data)
