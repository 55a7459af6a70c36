"""tests/bench/events/fresh.py — the driver of tests/bench/events/run.

Event freshness: a write through the edge, then the time until the
consuming worker's replica row is visible, measured from the moment the
write's HTTP answer is read (time.time_ns) to the moment a poll that sees
the row was sent (fresh.c "poll": one superuser connection, a poll every
1 ms on an absolute schedule, no LISTEN).  The peer, in the same run,
interleaved with the cases round by round: fresh.c "floor", a produce with
the relay's producer settings straight to a consumer that INSERTs and
commits, polled the same way.

Everything is configured by tests/bench/events/run through the environment.
"""

import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time

import requests
from confluent_kafka import Consumer, TopicPartition

EDGE = os.environ["BENCH_EDGE"]
BROKERS = os.environ["BENCH_BROKERS"]
CONNINFO = os.environ["BENCH_CONNINFO"]
FRESH = os.environ["BENCH_FRESH"].split()      # the helper, with runuser
PSQL = os.environ["BENCH_PSQL"].split()
N = int(os.environ.get("BENCH_WRITES", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
WARMUP = int(os.environ.get("BENCH_WARMUP_WRITES", "20"))
ADMIN_PASSWORD = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")
TAG = "%x" % int(time.time())

POLL_SQL = [
    # 0: the artist in content's replica
    "SELECT 1 FROM content.artists WHERE id = $1::uuid",
    # 1: the post in comments' replica at all (its draft's created event)
    "SELECT 1 FROM comments.posts WHERE id = $1::uuid",
    # 2: commentable: what comment_insert joins on (workers/comments/sql.c)
    "SELECT 1 FROM comments.posts WHERE id = $1::uuid AND visible",
]


def say(*a):
    print(*a, file=sys.stderr, flush=True)


def psql(sql):
    out = subprocess.run(PSQL + ["--csv", "-c", sql], check=True,
                         capture_output=True, text=True).stdout
    return list(csv.reader(io.StringIO(out)))[1:]


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Poller:
    def __init__(self):
        self.p = subprocess.Popen(FRESH + ["poll", CONNINFO] + POLL_SQL,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)

    def wait(self, k, key):
        self.p.stdin.write("%d %s\n" % (k, key))
        self.p.stdin.flush()
        first, seen, prev, polls = map(int, self.p.stdout.readline().split())
        if seen == 0:
            raise SystemExit("bench: %s never became visible (poll %d)" % (key, k))
        return first, seen, prev, polls

    def close(self):
        self.p.stdin.close()
        self.p.wait()


class Floor:
    """fresh.c floor: produce -> consume -> INSERT/commit -> seen."""

    def __init__(self, linger):
        self.p = subprocess.Popen(FRESH + ["floor", CONNINFO, BROKERS,
                                           "encore.bench.fresh%d" % linger, str(linger)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        line = self.p.stdout.readline().strip()
        if line != "ready":
            raise SystemExit("bench: the floor peer did not start")

    def run(self, n):
        self.p.stdin.write("%d\n" % n)
        self.p.stdin.flush()
        rows = []
        for _ in range(n):
            t0, recv, commit, seen, prev, polls = map(int, self.p.stdout.readline().split())
            if seen == 0:
                raise SystemExit("bench: a floor message never became visible")
            rows.append(dict(t0=t0, recv=recv, commit=commit, seen=seen,
                             prev=prev, polls=polls))
        return rows

    def close(self):
        self.p.stdin.close()
        self.p.wait()


class Edge:
    def __init__(self):
        self.s = requests.Session()
        r = self.s.post(EDGE + "/api/v1/auth/login",
                        json={"login": "admin", "password": ADMIN_PASSWORD})
        r.raise_for_status()
        self.s.headers["Authorization"] = "Bearer " + r.json()["access_token"]

    def write(self, method, path, body, want):
        t = time.time_ns()
        r = self.s.request(method, EDGE + path, json=body)
        ans = time.time_ns()
        if r.status_code != want:
            raise SystemExit("bench: %s %s answered %d: %s"
                             % (method, path, r.status_code, r.text[:300]))
        return r.json(), t, ans


def artist_case(edge, poller, i, rows):
    a, t, ans = edge.write("POST", "/api/v1/artists",
                           {"name": "Bench Fresh %s %s" % (TAG, i),
                            "slug": "bench-fresh-%s-%s" % (TAG, i)}, 201)
    first, seen, prev, polls = poller.wait(0, a["id"])
    rows.append(dict(key=a["id"], sent=t, ans=ans, first=first, seen=seen,
                     prev=prev, polls=polls))


def post_case(edge, poller, i, rows):
    p, _, _ = edge.write("POST", "/api/v1/posts",
                         {"title": "Bench fresh %s %s" % (TAG, i),
                          "body": "A post to publish.", "status": "draft"}, 201)
    # the draft's own event first, so that the publish is not queued
    # behind it
    poller.wait(1, p["id"])
    _, t, ans = edge.write("PATCH", "/api/v1/posts/" + p["id"],
                           {"status": "published"}, 200)
    first, seen, prev, polls = poller.wait(2, p["id"])
    rows.append(dict(key=p["id"], sent=t, ans=ans, first=first, seen=seen,
                     prev=prev, polls=polls))


def kafka_times(topic, ids):
    """ce_id -> the message's timestamp (CreateTime: the relay's produce
    call, ms) for every message of topic."""
    c = Consumer({"bootstrap.servers": BROKERS,
                  "group.id": "encore-bench-ts-%s" % TAG,
                  "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10)
    parts = [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
    ends = {}
    for tp in parts:
        _, hi = c.get_watermark_offsets(tp, timeout=10)
        ends[tp.partition] = hi
    c.assign(parts)
    out = {}
    left = {p for p, hi in ends.items() if hi > 0}
    deadline = time.time() + 60
    while left and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        hdr = dict(m.headers() or [])
        ce = hdr.get("ce_id")
        if ce is not None and ce.decode() in ids:
            out[ce.decode()] = m.timestamp()[1] * 1000000
        if m.offset() + 1 >= ends[m.partition()]:
            left.discard(m.partition())
    c.close()
    return out


def decompose(rows, outbox, inbox, etype, topic):
    """Adds the relay's produce time, the outbox stamp and the consumer's
    transaction start to each row (all from the same clock)."""
    keys = ",".join("'%s'" % r["key"] for r in rows)
    got = psql(
        "SELECT o.key, o.event_id, "
        "(extract(epoch FROM o.created_at) * 1e9)::bigint, "
        "(extract(epoch FROM o.published_at) * 1e9)::bigint, "
        "(extract(epoch FROM i.received_at) * 1e9)::bigint "
        "FROM %s o LEFT JOIN %s i ON i.event_id = o.event_id::text "
        "WHERE o.type = '%s' AND o.key IN (%s)" % (outbox, inbox, etype, keys))
    by_key = {g[0]: g for g in got}
    ts = kafka_times(topic, {g[1] for g in got})
    for r in rows:
        g = by_key.get(r["key"])
        if g is None:
            continue
        r["created"] = int(g[2])
        r["stamped"] = int(g[3]) if g[3] else None
        r["received"] = int(g[4]) if g[4] else None
        r["produced"] = ts.get(g[1])


def ms(ns):
    return ns / 1e6


def summary(name, lat):
    return "| %-26s | %5d | %7.2f | %7.2f | %7.2f | %7.2f | %7.2f |" % (
        name, len(lat), pct(lat, 50), pct(lat, 90), pct(lat, 99), max(lat),
        statistics.mean(lat))


def replica_cost(when):
    rows = psql(
        "SELECT t, n, pg_total_relation_size(t::regclass) FROM ("
        " SELECT 'content.artists' AS t, (SELECT count(*) FROM content.artists) AS n"
        " UNION ALL SELECT 'content.inbox', (SELECT count(*) FROM content.inbox)"
        " UNION ALL SELECT 'comments.posts', (SELECT count(*) FROM comments.posts)"
        " UNION ALL SELECT 'comments.inbox', (SELECT count(*) FROM comments.inbox)"
        " UNION ALL SELECT 'catalog.artists', (SELECT count(*) FROM catalog.artists)"
        " UNION ALL SELECT 'content.posts', (SELECT count(*) FROM content.posts)"
        ") s")
    print("\nReplica cost, %s (pg_total_relation_size: heap, indexes, TOAST):\n" % when)
    print("| table           |   rows |    bytes | bytes/row |")
    print("|-----------------|-------:|---------:|----------:|")
    for t, n, b in rows:
        n, b = int(n), int(b)
        print("| %-15s | %6d | %8d | %9s |" % (t, n, b, "%.0f" % (b / n) if n else "-"))


def lag(when):
    groups = {"encore-content": ["encore.catalog.artists", "encore.auth.users"],
              "encore-comments": ["encore.content.posts", "encore.auth.users"]}
    print("\nConsumer lag, %s (log end offset - committed offset, summed over"
          " partitions):\n" % when)
    print("| group           | topic                  | end offsets | lag |")
    print("|-----------------|------------------------|------------:|----:|")
    for g, topics in groups.items():
        c = Consumer({"bootstrap.servers": BROKERS, "group.id": g,
                      "enable.auto.commit": False})
        for t in topics:
            md = c.list_topics(t, timeout=10)
            if t not in md.topics or md.topics[t].error is not None:
                print("| %-15s | %-22s | (no topic)  |   - |" % (g, t))
                continue
            parts = [TopicPartition(t, p) for p in md.topics[t].partitions]
            committed = c.committed(parts, timeout=10)
            end = lagged = 0
            for tp in committed:
                _, hi = c.get_watermark_offsets(tp, timeout=10)
                end += hi
                lagged += hi - (tp.offset if tp.offset >= 0 else 0)
            print("| %-15s | %-22s | %11d | %3d |" % (g, t, end, lagged))
        c.close()


def main():
    edge = Edge()
    poller = Poller()
    floor0 = Floor(0)
    floor5 = Floor(5)

    replica_cost("at rest before the run (the demo catalog, the bench's earlier runs)")
    lag("at rest before the run")

    say("bench: warming up (%d writes per case)" % WARMUP)
    junk = []
    for i in range(WARMUP):
        artist_case(edge, poller, "w%d" % i, junk)
        post_case(edge, poller, "w%d" % i, junk)
    floor0.run(WARMUP)
    floor5.run(WARMUP)

    artists, posts, peer0, peer5 = [], [], [], []
    per = max(1, N // ROUNDS)
    for r in range(ROUNDS):
        n = per if r < ROUNDS - 1 else N - per * (ROUNDS - 1)
        base = r * per
        for i in range(n):
            artist_case(edge, poller, base + i, artists)
        for i in range(n):
            post_case(edge, poller, base + i, posts)
        peer0 += floor0.run(n)
        peer5 += floor5.run(n)
        say("bench: round %d/%d done (%d writes per case), load %s"
            % (r + 1, ROUNDS, n, open("/proc/loadavg").read().split()[0]))

    floor0.close()
    floor5.close()
    poller.close()

    decompose(artists, "catalog.outbox", "content.inbox",
              "encore.artist.created", "encore.catalog.artists")
    # the PATCH publishes encore.post.updated, then encore.post.published
    # (workers/content): the first is the one that makes the row visible
    decompose(posts, "content.outbox", "comments.inbox",
              "encore.post.updated", "encore.content.posts")

    fresh_a = [ms(r["seen"] - r["ans"]) for r in artists]
    fresh_p = [ms(r["seen"] - r["ans"]) for r in posts]
    f0 = [ms(r["seen"] - r["t0"]) for r in peer0]
    f5 = [ms(r["seen"] - r["t0"]) for r in peer5]
    period = [ms(r["seen"] - r["prev"]) for r in artists + posts + peer0 + peer5
              if r["prev"]]

    print("\nFreshness, ms: from the write's HTTP answer (the peer: from its"
          " produce call) to the poll that saw the row.\n")
    print("| path                       | n     | p50     | p90     | p99     | max     | mean    |")
    print("|----------------------------|------:|--------:|--------:|--------:|--------:|--------:|")
    print(summary("catalog artist -> content", fresh_a))
    print(summary("post publish -> comments", fresh_p))
    print(summary("peer, linger.ms=0", f0))
    print(summary("peer, linger.ms=5 (relay's)", f5))
    print("\nRatios (path / peer): artist p50 %.1fx p99 %.1fx; publish p50 %.1fx"
          " p99 %.1fx (against linger.ms=0); against linger.ms=5: artist p50 %.1fx,"
          " publish p50 %.1fx."
          % (pct(fresh_a, 50) / pct(f0, 50), pct(fresh_a, 99) / pct(f0, 99),
             pct(fresh_p, 50) / pct(f0, 50), pct(fresh_p, 99) / pct(f0, 99),
             pct(fresh_a, 50) / pct(f5, 50), pct(fresh_p, 50) / pct(f5, 50)))
    print("\nPoll resolution: the row became visible between the poll before"
          " and the one that saw it; that interval: median %.3f ms, p99 %.3f ms"
          " (so every figure above is late by at most that, about half of it"
          " on average)." % (pct(period, 50), pct(period, 99)))

    print("\nThe write itself (request sent -> answer read), ms: artist POST p50"
          " %.2f p99 %.2f; post PATCH p50 %.2f p99 %.2f."
          % (pct([ms(r["ans"] - r["sent"]) for r in artists], 50),
             pct([ms(r["ans"] - r["sent"]) for r in artists], 99),
             pct([ms(r["ans"] - r["sent"]) for r in posts], 50),
             pct([ms(r["ans"] - r["sent"]) for r in posts], 99)))

    print("\nWhere the time goes, ms (p50 / p99 of each segment; segments of"
          " one write add up to its total):\n")
    print("| segment                                               | artist p50 | p99    | publish p50 | p99    |")
    print("|-------------------------------------------------------|-----------:|-------:|------------:|-------:|")

    def seg(rows, a, b):
        return [ms(r[b] - r[a]) for r in rows
                if r.get(a) is not None and r.get(b) is not None]

    def line(name, a, b):
        xa, xp = seg(artists, a, b), seg(posts, a, b)
        print("| %-53s | %10.2f | %6.2f | %11.2f | %6.2f |"
              % (name, pct(xa, 50), pct(xa, 99), pct(xp, 50), pct(xp, 99)))

    line("answer -> relay's produce (NOTIFY wake-up, backlog read)", "ans", "produced")
    line("relay's produce -> consumer's transaction starts", "produced", "received")
    line("consumer's transaction starts -> poll sees the row", "received", "seen")
    line("(relay's produce -> outbox row stamped)", "produced", "stamped")
    print("\n(produce: the Kafka message's CreateTime, set by librdkafka at the"
          " relay's produce call, truncated to the ms, so the segments either"
          " side of it are ±1 ms; negative when the relay produced before the"
          " client had read its answer; received: inbox.received_at ="
          " now() of the consumer's transaction; stamped: outbox.published_at"
          " = now() of the relay's stamping transaction.)")
    k0 = [ms(r["recv"] - r["t0"]) for r in peer0]
    i0 = [ms(r["commit"] - r["recv"]) for r in peer0]
    k5 = [ms(r["recv"] - r["t0"]) for r in peer5]
    print("\nThe peer's segments, ms p50 / p99: produce -> consumed %.2f / %.2f"
          " (linger.ms=5: %.2f / %.2f); INSERT + commit %.2f / %.2f."
          % (pct(k0, 50), pct(k0, 99), pct(k5, 50), pct(k5, 99),
             pct(i0, 50), pct(i0, 99)))

    time.sleep(2)
    replica_cost("after the run")
    lag("at rest after the run (2 s after the last write)")


if __name__ == "__main__":
    main()
