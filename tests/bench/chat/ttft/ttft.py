#!/usr/bin/env python3
"""tests/bench/chat/ttft helper: time to first token, through the edge and
the chat worker, against the same fake provider asked directly.

    ttft.py measure EDGE_URL FAKE_URL OUT_JSON [--questions N] [--warmup W]
    ttft.py report OUT_JSON...          the tables (markdown) on stdout

measure: a fresh user (registered and logged in through the edge), then
N questions (after W not counted), alternating between the two paths,
one at a time, each in a session of its own (created before the clock
starts), each with a marker of its own so the fake's record of it is
found:

  stack   POST /api/v1/chat/sessions/{id}/messages through the edge with
          Accept: text/event-stream: nginx -> the chat worker (the
          question stored, grounded by the search worker, the prompt
          built) -> the engine -> the fake; the fake's tokens back through
          the engine, the worker's stream, nginx.
  direct  POST /v1/chat/completions to the fake itself, stream: true, the
          same messages the worker sent it (taken from its record).

Clocks: time.time() in this process and in the fake (same machine). For
each question:
  ttft     first token at the client - the request sent
  relay    first token at the client - the fake wrote it (first_token_at)
  before   the fake saw the request (started_at) - the request sent
  search   (stack only, a reference) GET /api/v1/search for the query the
           worker's grounding makes of the question, through the edge
The fake waits 20 ms before its first token in the normal scenario; it is
in ttft on both paths.

Standard library only.
"""

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import time
import urllib.parse
import uuid


def conn_for(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def call(base, method, path, body=None, headers=None):
    c = conn_for(base)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def stream(base, path, body, headers):
    """Sends the request, reads the SSE answer: (t_sent, t_first_token,
    t_end, events)."""
    c = conn_for(base)
    h = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    h.update(headers)
    payload = json.dumps(body).encode()
    c.putrequest("POST", path)
    for k, v in h.items():
        c.putheader(k, v)
    c.putheader("Content-Length", str(len(payload)))
    t0 = time.time()
    c.endheaders(payload)
    r = c.getresponse()
    if r.status != 200:
        raise SystemExit("%s%s answered %d: %s" % (base, path, r.status,
                                                     r.read()[:300]))
    first = None
    events = []
    event = None
    while True:
        line = r.readline()
        if not line:
            break
        line = line.rstrip(b"\r\n")
        if line.startswith(b"event: "):
            event = line[7:].decode()
        elif line.startswith(b"data: "):
            data = line[6:]
            if first is None and (event == "token" or (
                    event is None and b'"content"' in data)):
                first = time.time()
            events.append((event, data))
            if event == "done" or data == b"[DONE]":
                break
        elif line == b"":
            event = None
    t_end = time.time()
    r.close()
    c.close()
    if first is None:
        raise SystemExit("no token from %s%s: %r" % (base, path, events[:3]))
    return t0, first, t_end, events


def fake_record(fake, marker):
    _, reqs = call(fake, "GET", "/_fake/requests")
    got = [r for r in reqs
           if any(marker in (m.get("content") or "") for m in r["messages"]
                  if m.get("role") == "user")]
    if len(got) != 1:
        raise SystemExit("the fake has %d requests marked %s" % (len(got), marker))
    return got[0]


def measure(args):
    edge, fake = args.edge.rstrip("/"), args.fake.rstrip("/")
    name = "ttft" + uuid.uuid4().hex[:10]
    st, _ = call(edge, "POST", "/api/v1/auth/register",
                 {"username": name, "email": name + "@example.test",
                  "password": "correct horse battery"})
    if st != 201:
        raise SystemExit("register answered %d" % st)
    st, login = call(edge, "POST", "/api/v1/auth/login",
                     {"login": name, "password": "correct horse battery"})
    if st != 200:
        raise SystemExit("login answered %d" % st)
    auth = {"Authorization": "Bearer " + login["access_token"]}

    samples = {"stack": [], "direct": []}
    total = args.warmup + args.questions
    for i in range(total):
        marker = "q%s-%d" % (name, i)
        question = ("what albums by Iron Maiden are there? [[fake:normal]] "
                    + marker)
        # the stack
        st, sess = call(edge, "POST", "/api/v1/chat/sessions", {}, auth)
        if st != 201:
            raise SystemExit("a session answered %d" % st)
        t0, t1, t2, events = stream(
            edge, "/api/v1/chat/sessions/%s/messages" % sess["id"],
            {"content": question}, auth)
        if events[-1][0] != "done":
            raise SystemExit("the stack's stream ended without done")
        rec = fake_record(fake, marker)
        if i >= args.warmup:
            samples["stack"].append({
                "ttft": t1 - t0, "relay": t1 - rec["first_token_at"],
                "before": rec["started_at"] - t0, "whole": t2 - t0})
        # a reference: the grounding's search alone, through the edge
        # (the worker asks the search worker on its socket, not the edge)
        t0 = time.time()
        st, _ = call(edge, "GET", "/api/v1/search?q=iron%20maiden&limit=10"
                     "&type=album", None, auth)
        if st != 200:
            raise SystemExit("search answered %d" % st)
        if i >= args.warmup:
            samples["stack"][-1]["search"] = time.time() - t0
        # the same messages, straight to the fake
        dmarker = marker + "-d"
        msgs = [dict(m) for m in rec["messages"]]
        msgs[-1]["content"] = msgs[-1]["content"] + " " + dmarker
        t0, t1, t2, _ = stream(fake, "/v1/chat/completions",
                               {"model": rec["model"], "messages": msgs,
                                "stream": True}, {})
        drec = fake_record(fake, dmarker)
        if i >= args.warmup:
            samples["direct"].append({
                "ttft": t1 - t0, "relay": t1 - drec["first_token_at"],
                "before": drec["started_at"] - t0, "whole": t2 - t0})

    out = {"edge": edge, "questions": args.questions, "warmup": args.warmup,
           "machine": {"nproc": os.cpu_count(),
                       "load": os.getloadavg(),
                       "python": platform.python_version()},
           "samples": samples}
    with open(args.out, "w") as f:
        json.dump(out, f)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def report(args):
    for path in args.files:
        with open(path) as f:
            run = json.load(f)
        s = run["samples"]
        print("%d questions after %d warm-up, load average %s, %d CPUs"
              % (run["questions"], run["warmup"],
                 " ".join("%.1f" % x for x in run["machine"]["load"]),
                 run["machine"]["nproc"]))
        print()
        print("| path | measure | p50 ms | p90 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|")
        for which in ("stack", "direct"):
            for m in ("ttft", "before", "relay", "whole", "search"):
                xs = [x[m] * 1000 for x in s[which] if m in x]
                if not xs:
                    continue
                print("| %s | %s | %.1f | %.1f | %.1f | %.1f |"
                      % (which, m, pct(xs, .5), pct(xs, .9), pct(xs, .99),
                         max(xs)))
        print()
        a = [x["ttft"] * 1000 for x in s["stack"]]
        b = [x["ttft"] * 1000 for x in s["direct"]]
        print("- ttft, stack / direct: %.2f at p50, %.2f at p90; added"
              " %.1f ms at p50, %.1f ms at p90"
              % (pct(a, .5) / pct(b, .5), pct(a, .9) / pct(b, .9),
                 pct(a, .5) - pct(b, .5), pct(a, .9) - pct(b, .9)))
        # the direct relay is ~0 (the fake stamps a token once written):
        # a ratio to it means nothing, the difference is the added time
        a = [x["relay"] * 1000 for x in s["stack"]]
        b = [x["relay"] * 1000 for x in s["direct"]]
        print("- relay (a token from the fake's write to the client's"
              " read): added %.1f ms at p50, %.1f ms at p90, %.1f ms at p99"
              % (pct(a, .5) - pct(b, .5), pct(a, .9) - pct(b, .9),
                 pct(a, .99) - pct(b, .99)))
        a = [x["before"] * 1000 for x in s["stack"]]
        b = [x["before"] * 1000 for x in s["direct"]]
        print("- before (the question sent to the fake's receipt of the"
              " request): added %.1f ms at p50, %.1f ms at p90"
              % (pct(a, .5) - pct(b, .5), pct(a, .9) - pct(b, .9)))
        print()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("edge")
    m.add_argument("fake")
    m.add_argument("out")
    m.add_argument("--questions", type=int, default=200)
    m.add_argument("--warmup", type=int, default=10)
    r = sub.add_parser("report")
    r.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.cmd == "measure":
        measure(args)
    else:
        report(args)


if __name__ == "__main__":
    sys.exit(main())
