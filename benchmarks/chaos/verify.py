"""The verdict of a chaos run: what each WebSocket watcher got against what
the senders had acked, and the printed counts.

A watcher passes when every acked line reached it, the first copies of each
sender's lines came in that sender's order, and every extra copy is
explained. An extra copy is *resent* when it came over another connection
of the sender than the first copy and the sender did resend that line (a
crash fell between storing and acking); it is *republished* when both
copies came over the same connection with different ids: the worker stored
one batch twice (it retried a publish whose reply was lost when Redis died
or the link broke); it is *redelivered* when both copies carry the same id:
the web side sent one stored line twice. Republished and redelivered copies
break the "duplicates only for resends" rule and fail the run; they are
counted apart because their causes lie elsewhere."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.chaos.load import Sender, Watcher


@dataclass
class Verdict:
    delivered: int = 0          # distinct acked lines received
    lost: int = 0               # acked lines never received
    duplicates: int = 0         # extra copies received
    explained: int = 0          # ... resent by the sender over a new connection
    republished: int = 0        # ... stored twice from one connection (worker retry)
    redelivered: int = 0        # ... the same stored line (same id) sent twice
    unexplained: int = 0        # ... anything else
    out_of_order: int = 0       # first copies not in the sender's order
    missing: dict[int, str] = field(default_factory=dict)  # sender -> seq ranges
    odd: list[str] = field(default_factory=list)  # a few non-resend duplicates, for a look

    @property
    def ok(self) -> bool:
        return not (self.lost or self.republished or self.redelivered or self.unexplained
                    or self.out_of_order)


def ranges(seqs: list[int], most: int = 8) -> str:
    """[1, 2, 3, 7] -> "1-3,7" (the first `most` ranges)."""
    out: list[str] = []
    start = prev = None
    for seq in sorted(seqs):
        if prev is not None and seq == prev + 1:
            prev = seq
            continue
        if start is not None:
            out.append(f"{start}-{prev}" if start != prev else f"{start}")
        start = prev = seq
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ",".join(out[:most]) + (",..." if len(out) > most else "")


def verify(senders: list[Sender], watcher: Watcher) -> Verdict:
    v = Verdict()
    for s in senders:
        seqs = watcher.got.get(s.index, [])
        peers = watcher.peers.get(s.index, [])
        ids = watcher.ids.get(s.index, [])
        copies: defaultdict[int, list[tuple[str, str]]] = defaultdict(list)
        highest = -1
        for seq, peer, line_id in zip(seqs, peers, ids, strict=True):
            if not copies[seq] and seq < highest:
                v.out_of_order += 1
            copies[seq].append((peer, line_id))
            highest = max(highest, seq)
        missing = [seq for seq in range(s.acked) if seq not in copies]
        v.lost += len(missing)
        v.delivered += s.acked - len(missing)
        if missing:
            v.missing[s.index] = ranges(missing)
        for seq, seen in copies.items():
            if len(seen) < 2:
                continue
            v.duplicates += len(seen) - 1
            distinct = set(seen)
            v.redelivered += len(seen) - len(distinct)
            by_peer = Counter(peer for peer, _id in distinct)
            same_conn = sum(n - 1 for n in by_peer.values())
            other_conn = len(by_peer) - 1
            resent_ok = min(other_conn, s.resent[seq])
            v.republished += same_conn
            if (same_conn or len(seen) > len(distinct)) and len(v.odd) < 5:
                v.odd.append(f"c{s.index}:{seq} " + " ".join(f"{i}@{p}" for p, i in seen))
            v.explained += resent_ok
            v.unexplained += other_conn - resent_ok
    return v


def summary(base: dict[str, Any], senders: list[Sender], watchers: list[Watcher],
            verdicts: list[Verdict]) -> dict[str, Any]:
    """The run's counts as one JSON-able dict (printed and written)."""
    return {
        **base,
        "senders": len(senders), "watchers": len(watchers),
        "lines_sent": sum(s.next_seq for s in senders),
        "lines_written": sum(s.written for s in senders),
        "lines_resent": sum(sum(s.resent.values()) for s in senders),
        "acked": sum(s.acked for s in senders),
        "sender_connections": sum(s.connections for s in senders),
        "clients": [{**asdict(v), "received": w.count(), "connections": w.connections,
                     "foreign": w.foreign, "closes": dict(w.closes)}
                    for w, v in zip(watchers, verdicts, strict=True)],
        "lost": sum(v.lost for v in verdicts),
        "duplicates": sum(v.duplicates for v in verdicts),
        "duplicates_explained": sum(v.explained for v in verdicts),
        "duplicates_republished": sum(v.republished for v in verdicts),
        "duplicates_redelivered": sum(v.redelivered for v in verdicts),
        "duplicates_unexplained": sum(v.unexplained for v in verdicts),
        "out_of_order": sum(v.out_of_order for v in verdicts),
        "ok": all(v.ok for v in verdicts),
    }


def print_report(r: dict[str, Any]) -> None:
    print(f"chaos: {r['duration_s']:.0f} s, seed {r['seed']}, durable={r['redis_durable']}, "
          f"kill_redis={r['kill_redis']}, cluster={r.get('redis_cluster', False)}")
    print(f"  kills: {r['kills']} {r['kills_by_kind']}")
    print(f"  lines sent: {r['lines_sent']} (written {r['lines_written']}, "
          f"resent {r['lines_resent']}, sender connections {r['sender_connections']})")
    print(f"  acked: {r['acked']}; settled: {r['settled']} in {r['settle_s']} s")
    for i, c in enumerate(r["clients"]):
        print(f"  client {i}: delivered {c['delivered']} (received {c['received']}, "
              f"connections {c['connections']}), lost {c['lost']}, duplicates "
              f"{c['duplicates']} ({c['explained']} resent, {c['republished']} republished, "
              f"{c['redelivered']} redelivered, {c['unexplained']} unexplained), "
              f"out of order {c['out_of_order']}")
        for sender, missing in c["missing"].items():
            print(f"    missing from sender {sender}: {missing}")
        for odd in c["odd"]:
            print(f"    duplicate not from a resend: {odd}")
    print(f"  lost: {r['lost']}; duplicates: {r['duplicates']} ({r['duplicates_explained']} "
          f"explained by resends, {r['duplicates_republished']} republished by a worker, "
          f"{r['duplicates_redelivered']} redelivered by web, "
          f"{r['duplicates_unexplained']} unexplained); out of order: {r['out_of_order']}")
    print(f"  supervisor exit code after SIGTERM: {r.get('supervisor_rc')}")
    print(f"  verdict: {'PASS' if r['ok'] and r['settled'] else 'FAIL'}")
