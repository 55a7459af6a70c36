"""Restarts that drop nothing (issue 14, item 4).

A steady load of GETs and POSTs through the edge, to every worker nginx
routes to, runs while every worker is handed over to its binary on disk in
turn (`auto/stack restart-worker`: SIGUSR2, workers/lib/README.md) and
nginx is reloaded twice; every request must get the status it expects.

The load opens a connection per request: the client side of a keepalive
connection that nginx closes on reload is the client's race (HTTP/1.1
lets a client retry what failed on a reused connection), not the edge's
or a worker's; what is measured here is the edge and the workers.

A control proves the load can see failures: the same load while one
worker is stopped and started the old way loses requests.
"""
import http.client
import json
import os
import shutil
import threading
import time
import uuid

import pytest

from conftest import EDGE, RUN_DIR, ROOT, login, pid_of, register, stack
from comments_support import new_post as comments_post

PORT = int(EDGE.rsplit(":", 1)[1])
RATE = 120                 # requests per second, all threads together
THREADS = 6


def _restartable():
    """The workers the stack runs (their pid files), nginx's first."""
    names = []
    for p in sorted((RUN_DIR / "run").glob("*.pid")):
        if p.stem not in ("kafka", "nginx"):
            names.append(p.stem)
    return names


class Load:
    """RATE requests per second from THREADS threads until stopped (or
    `limit` seconds, so that a failing test never leaves it running); each
    request is (method, path, body, headers, expected status)."""

    def __init__(self, requests_, limit=600):
        self.requests = requests_
        self.limit = limit
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0
        self.failures = []
        self.by_path = {}
        self.threads = []

    def _one(self, method, path, body, headers, want):
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        try:
            hdrs = dict(headers)
            hdrs["Connection"] = "close"
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            text = r.read()
            if r.status != want:
                return "%s %s: %d %s" % (method, path, r.status, text[:200])
            return None
        except (OSError, http.client.HTTPException) as e:
            return "%s %s: %r" % (method, path, e)
        finally:
            conn.close()

    def _run(self, k):
        period = THREADS / RATE
        nxt = time.monotonic()
        end = nxt + self.limit
        i = k
        while not self.stop.is_set() and time.monotonic() < end:
            method, path, body, headers, want = self.requests[i % len(self.requests)]
            i += THREADS
            err = self._one(method, path, body() if callable(body) else body,
                            headers, want)
            with self.lock:
                self.sent += 1
                self.by_path[path] = self.by_path.get(path, 0) + 1
                if err:
                    self.failures.append((time.strftime("%H:%M:%S"), err))
            nxt += period
            pause = nxt - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                nxt = time.monotonic()

    def __enter__(self):
        for k in range(THREADS):
            t = threading.Thread(target=self._run, args=(k,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return False


@pytest.fixture(scope="module")
def mix():
    """GETs to every worker nginx routes to, and POSTs to three of them."""
    user, pw = register()
    token = login(user["username"], pw)["access_token"]
    h = {"Authorization": "Bearer " + token}
    post_id = comments_post()

    def post_body():
        return {"title": "Restart %s" % uuid.uuid4().hex[:8],
                "body": "Posted while the workers restart."}

    def comment_body():
        return {"body": "comment %s" % uuid.uuid4().hex[:8]}

    def ticket_body():
        return {"category": "bug", "subject": "Restart %s" % uuid.uuid4().hex[:8],
                "message": "Filed while the workers restart."}

    return [
        ("GET", "/api/v1/artists?limit=5", None, {}, 200),
        ("POST", "/api/v1/posts", post_body, h, 201),
        ("GET", "/api/v1/auth/me", None, h, 200),
        ("GET", "/api/v1/posts?limit=5", None, {}, 200),
        ("POST", "/api/v1/posts/%s/comments" % post_id, comment_body, h, 201),
        ("GET", "/api/v1/posts/%s/comments" % post_id, None, {}, 200),
        ("GET", "/api/v1/feedback", None, h, 200),
        ("POST", "/api/v1/feedback", ticket_body, h, 201),
        ("GET", "/api/v1/search?q=restart", None, {}, 200),
        ("GET", "/api/v1/users/%s" % user["id"], None, {}, 200),
    ]


def _new_binary(worker):
    """A new build of the worker's binary, as `make` leaves one: a new
    file under the name (the running process keeps the old inode), so
    that the hand-over runs the file on disk."""
    build = os.environ.get("ENCORE_BUILD", "build")
    path = ROOT / build / "bin" / ("encore-%s" % worker)
    tmp = path.with_name(path.name + ".new")
    shutil.copy2(path, tmp)
    os.replace(tmp, path)
    return path


def _check_all_ready(names):
    for w in names:
        assert pid_of(w), "worker %s has no pid file" % w


@pytest.mark.timeout(900)
def test_rolling_restart_drops_nothing(mix):
    names = _restartable()
    assert {"auth", "catalog", "content", "comments", "feedback", "search"} <= set(names)
    before = {w: pid_of(w) for w in names}
    binaries = {}

    with Load(mix) as load:
        time.sleep(2)
        for i, w in enumerate(names):
            binaries[w] = _new_binary(w)
            r = stack("restart-worker", w, check=False)
            assert r.returncode == 0, (w, r.stdout, r.stderr)
            if i in (1, len(names) // 2 + 1):
                r = stack("reload", check=False)
                assert r.returncode == 0, (r.stdout, r.stderr)
                time.sleep(1)
        time.sleep(2)

    after = {w: pid_of(w) for w in names}
    for w in names:
        assert after[w] and after[w] != before[w], (w, before[w], after[w])
        # the successor runs the new file, not the replaced one
        assert os.readlink("/proc/%d/exe" % after[w]) == str(binaries[w]), w
    _check_all_ready(names)
    assert load.sent > 0 and all(n > 0 for n in load.by_path.values()), load.by_path
    assert load.failures == [], "%d of %d requests failed: %s" % (
        len(load.failures), load.sent, load.failures[:20])
    # each old process drained and said so; each successor took the socket
    for w in names:
        log = (RUN_DIR / "log" / ("%s.log" % w)).read_text(errors="replace")
        assert "pid %d serves; draining" % after[w] in log, w
        assert "(handed over)" in log, w
        assert "hand-over failed" not in log, w


@pytest.mark.timeout(300)
def test_plain_restart_loses_requests(mix):
    """The control: stopping a worker and starting it again (what a
    restart was before the hand-over) under the same load fails
    requests, which the load counts."""
    with Load(mix) as load:
        time.sleep(1)
        stack("stop-worker", "feedback")
        time.sleep(1)
        r = stack("start-worker", "feedback", check=False)
        time.sleep(1)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert any("/api/v1/feedback" in f for _, f in load.failures), \
        (load.sent, load.failures[:5])
