"""`python -m benchmarks.sse_framing`: the per-event cost of building an
SSE event with sse-starlette's `ServerSentEvent.encode` against our hand
framing (`web.transport.sse_event`), on frames shaped like live traffic
(one line, a batch of 10, a flat-out batch of 200 lines of 60 bytes), in
both formats. Prints µs per event and per line; docs/sse.md has a run."""

from __future__ import annotations

import sys
import timeit

from sse_starlette.event import ServerSentEvent

from tcpws.protocol import Entry
from web.batch import Batch
from web.transport import sse_event


def frames(lines: int) -> Batch:
    data = "\n".join(f"s00:{i:08d}:" + "x" * 46 for i in range(lines))
    return Batch.of([Entry((1764000000123, 0), 8001, "127.0.0.1:50312", 1764000000.123, data)])


def main() -> int:
    print("| lines per event | format | sse-starlette µs/event | hand µs/event | ratio |")
    print("|---|---|---|---|---|")
    for lines in (1, 10, 200):
        batch = frames(lines)
        for json in (False, True):
            text = batch.json_items if json else batch.raw_text
            last = batch.last.id_text
            data = "[" + text + "]" if json else text

            def library(data: str = data, last: str = last) -> bytes:
                return ServerSentEvent(data=data, id=last).encode()

            def hand(text: str = text, json: bool = json, last: str = last) -> bytes:
                return sse_event(text, json, last)

            runs = max(200, 20_000 // lines)
            lib = min(timeit.repeat(library, number=runs, repeat=5)) / runs * 1e6
            own = min(timeit.repeat(hand, number=runs, repeat=5)) / runs * 1e6
            print(f"| {lines} | {'json' if json else 'raw'} | {lib:.2f} | {own:.2f} | "
                  f"{lib / own:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
