"""The Redis data layout and the message envelope.

One stream entry per *batch of lines* (an XADD per line would cost Redis
several times the CPU): a TCP worker stores every framed batch with `XADD
history` (trimmed to the last N lines) and publishes the same entries live on one channel, both
inside one Lua script call, so a batch costs one round trip and ids increase
strictly across all workers. An entry holds one connection's lines, or the
lines of several connections of one port that went in one call (the
coalescing window gathers them at device-like loads).

Stream entry fields: `port`, `peer`, `ts` (seconds, float text), `data`
(the batch's lines joined by "\\n"; a line never holds "\\n") and, for an
entry of several connections, `runs`: which lines came from which peer, and
when (see `Entry.runs`), and, when some line has any, `x`: each line's
extras (`tcpws.extras`: `data_b64`, `syslog`) as one JSON list.

Ids seen by clients:
  * an entry id is the stream id, ``"<ms>-<seq>"``;
  * a line id is ``"<ms>-<seq>-<index>"``, index 0-based inside its entry.
Both order as tuples of integers; ``since=`` takes either (an entry id means
"after that whole entry").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from tcpws import extras as extras_mod

STREAM_KEY = "tcpws:history"
HISTORY_LINES_KEY = "tcpws:history:lines"  # zset: where the history's lines start (PUBLISH_SCRIPT)
LIVE_CHANNEL = "tcpws:live"
WORKERS_KEY = "tcpws:workers"  # zset: worker name -> last heartbeat (unix s)
WORKER_KEY_PREFIX = "tcpws:worker:"  # hash per worker, expires
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_TTL = 5

PUBSEQ_KEY_PREFIX = "tcpws:pubseq:"  # string per tcp worker process: its last stored seq
PUBSEQ_TTL = 3600  # seconds; far longer than any retry of a lost reply
ALREADY_STORED = -1  # PUBLISH_SCRIPT's reply to a replayed (publisher, seq)

# KEYS[1] = history stream, KEYS[2] = its line book (HISTORY_LINES_KEY).
# ARGV[1] = the history's size in lines (--history-maxlen), ARGV[2] = live
# channel, ARGV[3] = lines in this call (all entries together), then groups
# of six: port, peer, ts, data, runs ("" for an entry of one connection;
# else see `Entry.runs`, and then peer and ts are those of the first run), x
# ("" for none; else the lines' extras, `tcpws.extras`: data_b64 / syslog,
# stored as field `x`). Returns the number of entries stored. The live
# message is a JSON array of [id, port, peer, ts, data] (or [..., data,
# runs] or [..., data, runs, x]) arrays, in stream order.
#
# Trimming by lines: an entry holds one line or a thousand, so a bound in
# entries is no bound on memory. The line book is a sorted set: member
# "next" scores the number of lines ever stored; every other member is an
# entry id scored by the number of its first line. Each call that crosses a
# multiple of `step` lines (maxlen / 64) marks its first entry, then trims
# the stream (XTRIM MINID ~) to the newest mark at least maxlen lines from
# the end and forgets older marks: the history keeps at least the last
# maxlen lines and at most about maxlen + 2 step + one call's lines. The
# XADD's own `MAXLEN ~ maxlen` (entries, never more than lines) stays as a
# bound for a stream whose book was lost.
#
# Idempotent form (what tcp_worker uses): KEYS[3] = pubseq_key(publisher id),
# ARGV[4] = the call's sequence number (strictly increasing per publisher id,
# the SAME on a retry), ARGV[5] = the key's TTL; the groups then start at
# ARGV[6]. A seq <= the one stored stores nothing and returns ALREADY_STORED:
# its first attempt ran, only the reply was lost. The seq is written in the
# same script as the XADDs, so both persist together (AOF, replicas). It is
# written last: a script that failed half-way may store a batch twice on its
# retry, but never skips one.
PUBLISH_SCRIPT = """
local first = 4
if #KEYS > 2 then
  local last = tonumber(redis.call('GET', KEYS[3]) or '0')
  if tonumber(ARGV[4]) <= last then
    return -1
  end
  first = 6
end
local out = {}
for i = first, #ARGV, 6 do
  local fields = {'port', ARGV[i], 'peer', ARGV[i+1], 'ts', ARGV[i+2], 'data', ARGV[i+3]}
  local item = {'', ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]}
  if ARGV[i+4] ~= '' then
    fields[#fields+1] = 'runs'
    fields[#fields+1] = ARGV[i+4]
  end
  if ARGV[i+4] ~= '' or ARGV[i+5] ~= '' then
    item[6] = ARGV[i+4]
  end
  if ARGV[i+5] ~= '' then
    fields[#fields+1] = 'x'
    fields[#fields+1] = ARGV[i+5]
    item[7] = ARGV[i+5]
  end
  item[1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
  out[#out+1] = item
end
if #out > 0 then
  redis.call('PUBLISH', ARGV[2], cjson.encode(out))
  local maxlen, n = tonumber(ARGV[1]), tonumber(ARGV[3])
  local total = tonumber(redis.call('ZINCRBY', KEYS[2], n, 'next'))
  local step = math.max(1, math.floor(maxlen / 64))
  if math.floor((total - n) / step) < math.floor(total / step) then
    redis.call('ZADD', KEYS[2], total - n, out[1][1])
    local head = redis.call('ZREVRANGEBYSCORE', KEYS[2], total - maxlen, '-inf',
                            'WITHSCORES', 'LIMIT', 0, 1)
    if head[1] then
      redis.call('XTRIM', KEYS[1], 'MINID', '~', head[1])
      redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. head[2])
    end
  end
end
if #KEYS > 2 then
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
end
return #out
"""

StreamId = tuple[int, int]


def worker_key(name: str) -> str:
    return WORKER_KEY_PREFIX + name


def pubseq_key(publisher_id: str) -> str:
    """Where PUBLISH_SCRIPT keeps the last seq stored for `publisher_id`."""
    return PUBSEQ_KEY_PREFIX + publisher_id


def parse_stream_id(text: str) -> StreamId:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_stream_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


def parse_since(text: str) -> tuple[StreamId, int]:
    """Parse a ``since=`` value into (entry id, last line index delivered).

    ``"ms-seq-idx"`` means "after line idx of that entry"; ``"ms-seq"`` (or
    ``"ms"``) means "after that whole entry" (index -1 stands for "all of
    it", see `Entry.lines_after`). Raises ValueError on anything else."""
    parts = text.split("-")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() and len(p) <= 20 for p in parts):
        raise ValueError(f"malformed id {text!r}: expected MS-SEQ or MS-SEQ-INDEX")
    ms = int(parts[0])
    seq = int(parts[1]) if len(parts) > 1 else 0
    if len(parts) == 3:
        return (ms, seq), int(parts[2])
    return (ms, seq), -1


@dataclass(slots=True)
class Entry:
    """One stored batch: lines that arrived together on one connection.

    Frames for each output format are built once per entry and shared by
    every client that gets it (see `raw` and `json_items`)."""

    id: StreamId
    port: int
    peer: str
    ts: float
    data: str
    # "" (every line from `peer` at `ts`), or a JSON array of [peer, ts, n]
    # or [peer, ts, n, subject]: the first n lines from that peer at that
    # ts (and TLS client subject), then the next run's.
    runs: str = ""
    # "" (no line has any), or the lines' extras as one JSON list
    # (tcpws.extras: data_b64, syslog), one item per line.
    x: str = ""
    base: int = 0  # line index (in the stored entry) of this entry's first line
    _json_items: str | None = field(default=None, repr=False)

    @property
    def id_text(self) -> str:
        return format_stream_id(self.id)

    @property
    def lines(self) -> list[str]:
        return self.data.split("\n")

    @property
    def raw(self) -> str:
        """The lines joined by "\\n": the raw format of the original design."""
        return self.data

    @property
    def json_items(self) -> str:
        """The entry's envelopes as JSON objects joined by "," (no brackets),
        so a frame of several entries is "[" + ",".join(...) + "]"."""
        if self._json_items is None:
            self._json_items = self._envelopes(self.base, self.lines, self.extras)
        return self._json_items

    @property
    def extras(self) -> extras_mod.Extras | None:
        """Each line's extras (None when no line has any)."""
        return extras_mod.decode(self.x) if self.x else None

    def run_list(self) -> list[tuple[str, float, int, str]]:
        """(peer, ts, line count, subject) for each run of lines, in order."""
        if not self.runs:
            return [(self.peer, self.ts, self.line_count, "")]
        return [(str(run[0]), float(run[1]), int(run[2]), str(run[3]) if len(run) > 3 else "")
                for run in orjson.loads(self.runs)]

    @property
    def peers(self) -> list[str]:
        """The peer of each line."""
        return [peer for peer, _, n, _ in self.run_list() for _ in range(n)]

    def _envelopes(self, first_index: int, lines: list[str],
                   extras: extras_mod.Extras | None) -> str:
        """Envelopes of `lines` (with their `extras`), the first being line
        `first_index` of the stored entry; `self.runs` counts from `self.base`."""
        if not self.runs:
            return _envelopes_json(self.id_text, self.port, self.peer, self.ts,
                                   first_index, lines, extras)
        parts = []
        start = self.base
        for peer, ts, n, subject in self.run_list():
            end = start + n
            if end > first_index:
                lo = max(start, first_index)
                a, b = lo - first_index, end - first_index
                parts.append(_envelopes_json(self.id_text, self.port, peer, ts, lo,
                                             lines[a:b], None if extras is None else extras[a:b],
                                             subject))
            start = end
        return ",".join(p for p in parts if p)

    def lines_after(self, index: int) -> Entry:
        """This entry without its lines 0..index (index -1 keeps all); only
        for an entry as stored (`base` 0)."""
        if index < 0:
            return self
        kept = self.lines[index + 1 :]
        first = index + 1
        x = self.extras
        kept_x = None if x is None else x[first:]
        runs = ""
        peer, ts = self.peer, self.ts
        if self.runs:
            left: list[list[str | float | int]] = []
            start = 0
            for p, t, n, subject in self.run_list():
                if start + n > first:
                    kept_n = start + n - max(start, first)
                    left.append([p, t, kept_n, subject] if subject else [p, t, kept_n])
                start += n
            if left:
                peer, ts = str(left[0][0]), float(left[0][1])
                runs = orjson.dumps(left).decode()
        trimmed = Entry(self.id, self.port, peer, ts, "\n".join(kept), runs,
                        extras_mod.encode(kept_x).decode(), first)
        # Keep line ids stable: re-number from index + 1.
        trimmed._json_items = self._envelopes(first, kept, kept_x)
        return trimmed

    def at_most(self, severity: int) -> Entry | None:
        """Only the lines whose syslog severity is `severity` or worse (lines
        without one are left out), line ids kept; None when none is left."""
        x = self.extras
        if x is None:
            return None
        keep = [i for i, extra in enumerate(x)
                if (s := extras_mod.severity(extra)) is not None and s <= severity]
        if not keep:
            return None
        if len(keep) == len(x):
            return self
        lines, runs = self.lines, self.run_list()
        run_of = [r for r, (_, _, n, _) in enumerate(runs) for _ in range(n)]
        kept_runs: list[list[Any]] = []
        items = []
        for i in keep:
            peer, ts, _, subject = runs[run_of[i]]
            items.append(_envelopes_json(self.id_text, self.port, peer, ts, self.base + i,
                                         [lines[i]], [x[i]], subject))
            if kept_runs and kept_runs[-1][4] == run_of[i]:
                kept_runs[-1][2] += 1
            else:
                kept_runs.append([peer, ts, 1, subject, run_of[i]])
        out = Entry(self.id, self.port, kept_runs[0][0], kept_runs[0][1],
                    "\n".join(lines[i] for i in keep),
                    orjson.dumps([r[:4] if r[3] else r[:3] for r in kept_runs]).decode()
                    if len(kept_runs) > 1 or kept_runs[0][3] else "",
                    extras_mod.encode([x[i] for i in keep]).decode(), self.base)
        out._json_items = ",".join(items)
        return out

    @property
    def line_count(self) -> int:
        return self.data.count("\n") + 1


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_JSON_STRING = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)


def _envelopes_json(id_text: str, port: int, peer: str, ts: float, first_index: int,
                    lines: list[str], extras: extras_mod.Extras | None = None,
                    subject: str = "") -> str:
    """Exactly `json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))`
    for each line (line ids from `first_index`), joined by ",", at a fraction
    of the cost: the lines are encoded in one call, then each string body is
    cut out by a tokenizer that knows JSON escapes."""
    if not lines:
        return ""
    strings = _JSON_STRING.findall(_encode(lines))
    who = f'"peer":{_encode(peer)},' + (f'"subject":{_encode(subject)},' if subject else "")
    head = (f'{{"id":"{id_text}-', f'","port":{_encode(port)},'
            f'{who}"ts":{_encode(ts)},"data":"')
    if extras is not None:
        more = extras_mod.envelope_json
        return ",".join(f'{head[0]}{first_index + i}{head[1]}{text}"{more(extras[i])}}}'
                        for i, text in enumerate(strings))
    return ",".join(f'{head[0]}{first_index + i}{head[1]}{text}"}}'
                    for i, text in enumerate(strings))


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (bytes without decode_responses, str with it)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def decode_live(payload: bytes | str) -> list[Entry]:
    """Decode one live message published by PUBLISH_SCRIPT (orjson: about
    2.5x the stdlib's speed on these messages, docs/benchmark.md finding 3)."""
    return [
        Entry(parse_stream_id(item[0]), int(item[1]), item[2], float(item[3]), item[4],
              item[5] if len(item) > 5 else "", item[6] if len(item) > 6 else "")
        for item in orjson.loads(payload)
    ]


def entry_from_stream(sid: bytes | str, fields: dict[Any, Any]) -> Entry:
    """Build an Entry from one XRANGE/XREAD item (bytes or str keys)."""
    def get(name: str) -> str:
        value = fields.get(name, fields.get(name.encode(), b""))
        return as_text(value)

    return Entry(
        parse_stream_id(as_text(sid)),
        int(get("port") or 0),
        get("peer"),
        float(get("ts") or 0.0),
        get("data"),
        get("runs"),
        get("x"),
    )


def publish_keys(publisher_id: str | None = None) -> list[str]:
    """KEYS for PUBLISH_SCRIPT: the history and its line book, then, for the
    idempotent form, the publisher's seq key."""
    keys = [STREAM_KEY, HISTORY_LINES_KEY]
    if publisher_id is not None:
        keys.append(pubseq_key(publisher_id))
    return keys


def publish_args(maxlen: int, batch: list[tuple[int, str, float, str]]
                 | list[tuple[int, str, float, str, str]]
                 | list[tuple[int, str, float, str, str, str]],
                 seq: int | None = None) -> list[str | int | float]:
    """ARGV for PUBLISH_SCRIPT: batch items are (port, peer, ts, data),
    (port, peer, ts, data, runs) or (port, peer, ts, data, runs, x).

    Without `seq`: KEYS = publish_keys(). With it (idempotent form):
    KEYS = publish_keys(publisher id)."""
    lines = sum(item[3].count("\n") + 1 for item in batch)
    args: list[str | int | float] = [maxlen, LIVE_CHANNEL, lines]
    if seq is not None:
        args.extend((seq, PUBSEQ_TTL))
    for port, peer, ts, data, *more in batch:
        args.extend((port, peer, f"{ts:.3f}", data, more[0] if more else "",
                     more[1] if len(more) > 1 else ""))
    return args
