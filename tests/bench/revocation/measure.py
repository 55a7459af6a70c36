#!/usr/bin/env python3
"""tests/bench/revocation/measure.py — the revocation delay: from the
auth worker's commit (the cause's HTTP answer; the commit precedes it)
to the first request the edge refuses with the token, over N trials per
cause, through the real edge and the stack's edge agent.

  measure.py [--trials N] [--causes logout,password_changed,...]
             [--edge http://127.0.0.1:8080] [--second http://127.0.0.1:8081]

Each trial: a login, the token checked (GET /api/v1/auth/me, 200), the
cause, then GET /api/v1/auth/me with the token back to back (each poll
one keep-alive request, about 1 ms) until 401 "revoked (<cause>)".  With
--second, the same token is polled on a second edge too (its own nginx,
zone and agent).  Prints p50/p90/p99/max per cause (ms), and the poll's
own resolution (the median time of one poll).

  measure.py --stand-in   the path up to nginx only: commit -> the
                          agent's post at a stand-in of the endpoint"""
import argparse
import base64
import json
import os
import statistics
import sys
import time
import uuid

import requests

ADMIN_PASSWORD = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


class Bench:
    def __init__(self, edge, second=None):
        self.edge = edge
        self.second = second
        self.s = requests.Session()
        self.s2 = requests.Session()
        self.polls = []

    def post(self, path, **kw):
        return self.s.post(self.edge + path, **kw)

    def login(self, name, pw):
        r = self.post("/api/v1/auth/login", json={"login": name, "password": pw})
        r.raise_for_status()
        return r.json()

    def register(self):
        name = "bench_%s" % uuid.uuid4().hex[:12]
        pw = "bench password %s" % uuid.uuid4().hex[:8]
        r = self.post("/api/v1/auth/register",
                      json={"username": name, "email": name + "@bench.test", "password": pw})
        r.raise_for_status()
        return r.json(), pw

    def until_refused(self, session, base, token, cause, since, timeout=30):
        h = {"Authorization": "Bearer " + token}
        deadline = time.time() + timeout
        while True:
            t0 = time.time()
            r = session.get(base + "/api/v1/auth/me", headers=h)
            t = time.time()
            self.polls.append(t - t0)
            # the edge's refusal; before it, the worker answers (200, or
            # its own 401 for a disabled or deleted account)
            if r.status_code == 401 and "the access token was revoked" in r.text:
                assert "revoked (%s)" % cause in r.text, r.text
                return t - since
            assert r.status_code in (200, 401), r.text
            if t > deadline:
                raise RuntimeError("not refused within %ss" % timeout)

    def trial(self, cause, admin):
        user, pw = self.register()
        s = self.login(user["username"], pw)
        tok = s["access_token"]
        h = {"Authorization": "Bearer " + tok}
        assert self.s.get(self.edge + "/api/v1/auth/me", headers=h).status_code == 200
        if cause == "logout":
            r = self.post("/api/v1/auth/logout", json={"refresh_token": s["refresh_token"]})
        elif cause == "password_changed":
            r = self.s.patch(self.edge + "/api/v1/users/me", headers=h,
                             json={"password": pw + "x", "current_password": pw})
        elif cause in ("disabled", "role_changed"):
            body = {"disabled": True} if cause == "disabled" else {"role": "moderator"}
            r = self.s.patch(self.edge + "/api/v1/users/" + user["id"], json=body,
                             headers={"Authorization": "Bearer " + admin})
        elif cause == "deleted":
            r = self.s.delete(self.edge + "/api/v1/users/me", headers=h, json={"password": pw})
        else:
            raise ValueError(cause)
        committed = time.time()
        assert r.status_code in (200, 204), r.text
        d = self.until_refused(self.s, self.edge, tok, cause, committed)
        d2 = None
        if self.second:
            d2 = self.until_refused(self.s2, self.second, tok, cause, committed)
        return d, d2


def stand_in(edge, trials):
    """commit -> the entry's arrival at a stand-in of the edge's endpoint
    (tests/integration/edge_agent_support.py), through a private agent:
    the path up to nginx, without nginx (the module's side measured
    apart).  Prints the same table for "logout"."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "integration"))
    from edge_agent_support import Agent, MockEdge
    mock = MockEdge()
    agent = Agent(mock.url, name="bench-agent")
    b = Bench(edge)
    try:
        deadline = time.time() + 60
        while not agent.ready():
            assert time.time() < deadline, "agent not ready"
            time.sleep(0.1)
        user, pw = b.register()
        ds = []
        for _ in range(trials):
            s = b.login(user["username"], pw)
            sid = json.loads(base64.urlsafe_b64decode(
                s["access_token"].split(".")[1] + "=="))["sid"]
            r = b.post("/api/v1/auth/logout", json={"refresh_token": s["refresh_token"]})
            committed = time.time()
            assert r.status_code == 204
            while True:
                got = [t for t, p, _ in mock.snapshot()
                       for e in p["revocations"] if e.get("sid") == sid]
                if got:
                    ds.append((got[0] - committed) * 1000)
                    break
                assert time.time() < committed + 30, "never posted"
                time.sleep(0.001)
        print("| path | trials | p50 ms | p90 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|")
        print("| logout -> stand-in edge | %d | %.1f | %.1f | %.1f | %.1f |" % (
            len(ds), pct(ds, 50), pct(ds, 90), pct(ds, 99), max(ds)))
    finally:
        agent.stop()
        mock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--causes", default="logout,password_changed,disabled,role_changed,deleted")
    ap.add_argument("--edge", default="http://127.0.0.1:%s" % os.environ.get("ENCORE_EDGE_PORT", "8080"))
    ap.add_argument("--second", default=None)
    ap.add_argument("--stand-in", action="store_true",
                    help="measure up to a stand-in of the edge's endpoint instead")
    a = ap.parse_args()
    if a.stand_in:
        stand_in(a.edge, a.trials)
        return
    b = Bench(a.edge, a.second)
    admin = b.login("admin", ADMIN_PASSWORD)["access_token"]
    print("| cause | trials | p50 ms | p90 ms | p99 ms | max ms |%s" %
          (" second edge p50 / p99 / max ms |" if a.second else ""))
    print("|---|---|---|---|---|---|%s" % ("---|" if a.second else ""))
    for cause in a.causes.split(","):
        ds, d2s = [], []
        for _ in range(a.trials):
            d, d2 = b.trial(cause, admin)
            ds.append(d * 1000)
            if d2 is not None:
                d2s.append(d2 * 1000)
        line = "| %s | %d | %.1f | %.1f | %.1f | %.1f |" % (
            cause, len(ds), pct(ds, 50), pct(ds, 90), pct(ds, 99), max(ds))
        if d2s:
            line += " %.1f / %.1f / %.1f |" % (pct(d2s, 50), pct(d2s, 99), max(d2s))
        print(line)
        sys.stdout.flush()
    print("\npoll resolution: median %.2f ms per GET /api/v1/auth/me (%d polls)"
          % (statistics.median(b.polls) * 1000, len(b.polls)))


if __name__ == "__main__":
    main()
