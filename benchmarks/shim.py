"""Run one of our process modules with an implementation choice swapped in,
to measure what that choice is worth without editing the module.

    BENCH_SHIM="uvloop,orjson,ws=wsproto,loop=asyncio" \\
        python -m benchmarks.shim tcp_worker --port 8001 ...

* `uvloop`: install uvloop's event-loop policy (the module's `asyncio.run`
  then runs on uvloop);
* `resp2`: redis-py speaks RESP2 (pub/sub messages are plain arrays, not
  RESP3 push notifications);
* `nohiredis`: hide hiredis, so redis-py parses replies in pure Python;
* `orjson`: decode the live messages (`tcpws.protocol.decode_live`) with
  orjson instead of the stdlib json;
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
        if name == "uvloop":
            import uvloop
            uvloop.install()
        elif name == "resp2":  # redis-py 8 speaks RESP3 unless told otherwise
            import redis.asyncio.connection
            setattr(redis.asyncio.connection, "DEFAULT_RESP_VERSION", 2)  # noqa: B010
        elif name == "nohiredis":  # redis-py falls back to its pure-Python parser
            sys.modules["hiredis"] = None  # type: ignore[assignment]
        elif name == "orjson":
            import orjson

            import tcpws.protocol
            fast = types.SimpleNamespace(**vars(json))
            fast.loads = orjson.loads
            setattr(tcpws.protocol, "json", fast)  # noqa: B010 (a module attribute)
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
