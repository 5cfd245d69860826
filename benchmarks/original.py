"""The original single-process design, reimplemented faithfully as the
benchmark's baseline.

One FastAPI/uvicorn process; the lifespan starts one asyncio TCP server per
port; each TCP connection reads 1 KiB chunks with `reader.read(1024)`,
decodes them and awaits a broadcast of the raw chunk to every WebSocket
client in turn. What differs from the seed, on purpose and nothing more:
the per-message (and per-connection) `print()` calls are gone, the host and
ports come from the command line (loopback, free ports), the three modules
(`globals`, `websocket_manager`, `server`) live in this one file, and uvicorn
logs at warning level. Uvicorn's defaults (uvloop, httptools, the
websockets-sansio implementation, permessage-deflate offered) are kept.

Run: `python -m benchmarks.original --http-port 8100 --tcp-port 8101,8102`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, WebSocket


class WebSocketManager:
    """The seed's manager: a list of sockets, broadcast awaits each in turn."""

    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        if websocket in self.active_connections:
            self.active_connections.remove(websocket)

    async def broadcast(self, data: str) -> None:
        disconnected_connections = []
        for connection in self.active_connections:
            try:
                await connection.send_text(data)
            except Exception:  # the seed's catch-all, kept as it was
                disconnected_connections.append(connection)
        for connection in disconnected_connections:
            self.disconnect(connection)


websocket_manager = WebSocketManager()
tcp_server_tasks: list[asyncio.Task[None]] = []
tcp_server_stop_event = asyncio.Event()
HOST = "127.0.0.1"
PORTS: list[int] = [8001, 8002, 8003]


async def handle_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(1024)
            if not data:
                break
            decoded_data = data.decode("utf-8")
            await websocket_manager.broadcast(decoded_data)
    except asyncio.CancelledError:
        pass
    except Exception:  # the seed printed the error and closed the connection
        pass
    finally:
        writer.close()
        await writer.wait_closed()


async def start_tcp_server_task(port: int, stop_event: asyncio.Event) -> None:
    server = await asyncio.start_server(handle_client, HOST, port)
    try:
        await stop_event.wait()
    except asyncio.CancelledError:
        pass
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def lifespan_event(app: FastAPI) -> AsyncIterator[None]:
    for port in PORTS:
        task = asyncio.create_task(start_tcp_server_task(port, tcp_server_stop_event))
        tcp_server_tasks.append(task)
    yield
    tcp_server_stop_event.set()
    await asyncio.gather(*tcp_server_tasks, return_exceptions=True)


app = FastAPI(lifespan=lifespan_event)


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await websocket_manager.connect(websocket)
    try:
        while True:
            await websocket.receive_text()
    except Exception:  # the seed's catch-all (WebSocketDisconnect included)
        pass
    finally:
        websocket_manager.disconnect(websocket)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.original")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--tcp-port", default="8001,8002,8003", help="comma list")
    parser.add_argument("--ws", default="auto", help="uvicorn --ws implementation")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop implementation")
    args = parser.parse_args()
    global HOST
    HOST = args.host
    PORTS[:] = [int(p) for p in args.tcp_port.split(",") if p]
    uvicorn.run(app, host=args.host, port=args.http_port, log_level="warning",
                ws=args.ws, loop=args.loop)


if __name__ == "__main__":
    main()
