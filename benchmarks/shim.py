"""Run one of our process modules with an implementation choice swapped in,
to measure what that choice is worth without editing the module.

    BENCH_SHIM="nouvloop,stdjson,ws=wsproto,loop=asyncio" \\
        python -m benchmarks.shim tcp_worker --port 8001 ...

Each option undoes or swaps one choice that the benchmark showed pays
(docs/benchmark.md), so what it is worth can be measured again:

* `nouvloop`: hide uvloop, so the tcp worker runs on the stdlib loop;
* `resp3`: the web's subscriber speaks redis-py 8's default RESP3 (pub/sub
  messages as push notifications) instead of RESP2;
* `nohiredis`: hide hiredis, so redis-py parses replies in pure Python;
* `stdjson`: decode the live messages (`tcpws.protocol.decode_live`) with
  the stdlib json instead of orjson;
* `ws=IMPL`, `loop=IMPL`: what uvicorn's "auto" means for its WebSocket
  implementation (websockets, websockets-sansio, wsproto) and event loop.

Used only by the benchmark's variants (`benchmarks.variants`)."""

from __future__ import annotations

import json
import os
import runpy
import sys
import types


def apply(options: list[str]) -> None:
    for option in options:
        name, _, value = option.partition("=")
        if name == "nouvloop":  # tcp_worker falls back to asyncio.run
            sys.modules["uvloop"] = None  # type: ignore[assignment]
        elif name == "resp3":
            import web.broadcaster
            setattr(web.broadcaster, "SUBSCRIBER_RESP", 3)  # noqa: B010
        elif name == "nohiredis":  # redis-py falls back to its pure-Python parser
            sys.modules["hiredis"] = None  # type: ignore[assignment]
        elif name == "stdjson":
            import tcpws.protocol
            slow = types.SimpleNamespace(loads=json.loads)
            setattr(tcpws.protocol, "orjson", slow)  # noqa: B010 (a module attribute)
        elif name in ("ws", "loop"):
            from uvicorn import config
            table = config.WS_PROTOCOLS if name == "ws" else config.LOOP_FACTORIES
            table["auto"] = table[value]
        elif name:
            raise SystemExit(f"benchmarks.shim: unknown option {option!r}")


def main() -> None:
    apply(os.environ.get("BENCH_SHIM", "").split(","))
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
