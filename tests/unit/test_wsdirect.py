"""The frames `web.wsdirect` writes straight to the socket are the bytes
websockets' own server protocol sends for the same text, and a websockets
client decodes them to that text; a batch's frame is built once and shared."""

from __future__ import annotations

import json

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from tcpws.protocol import Entry
from web.batch import Batch
from web.wsdirect import text_frame

# Around each length-encoding boundary (7-bit, 16-bit, 64-bit) and non-ASCII.
TEXTS = ["", "a", "x" * 125, "x" * 126, "x" * 65535, "x" * 65536, "é€😀\n" * 40_000]


def server_bytes(text: str) -> bytes:
    server = Protocol(Side.SERVER, state=State.OPEN)
    server.send_text(text.encode())
    return b"".join(server.data_to_send())


def client_decodes(data: bytes) -> str:
    client = Protocol(Side.CLIENT, state=State.OPEN, max_size=None)
    client.receive_data(data)
    frames = [e for e in client.events_received() if isinstance(e, Frame)]
    assert [(f.opcode, f.fin) for f in frames] == [(Opcode.TEXT, True)]
    return bytes(frames[0].data).decode()


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: f"{len(t.encode())}B")
def test_a_frame_is_what_websockets_sends_and_a_client_reads(text: str) -> None:
    frame = text_frame(text.encode())
    assert frame == server_bytes(text)
    assert client_decodes(frame) == text


def test_a_batch_frame_holds_its_frame_text_in_either_format_and_is_built_once() -> None:
    entries = [Entry((1764000000000, i), 8001, "127.0.0.1:5000", 1764000000.5, f"line {i}\nnext")
               for i in range(3)]
    batch = Batch.of(entries)
    raw, js = batch.ws_frame(False), batch.ws_frame(True)
    assert client_decodes(raw) == batch.raw_text
    assert client_decodes(js) == "[" + batch.json_items + "]"
    assert [o["data"] for o in json.loads(client_decodes(js))] == [
        "line 0", "next", "line 1", "next", "line 2", "next"]
    assert batch.ws_frame(False) is raw and batch.ws_frame(True) is js
