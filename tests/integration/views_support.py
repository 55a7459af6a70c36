"""Shared helpers of the views' tests (test_views*.py): what every view
answer carries, and a fake upstream for test-only views.

The fake upstream is a small threaded HTTP server on a loopback port whose
answers a test declares (FakeUpstream.add): status, body, content type,
and when to answer (at once, when the test releases it, or once other
documents were asked for).  It records every request it got, so a test
knows what reached a part: its query, its headers, how often."""
import base64
import collections
import http.server
import json
import re
import threading
import urllib.parse
import uuid

import requests

from conftest import NGINX_CRASH, RUN_DIR, url

ETAG_RE = re.compile(r'^"[A-Za-z0-9_-]{22}"$')
JSON_TYPE = "application/json; charset=utf-8"
WAIT = 60           # how long the fake holds an answer at most (a test's bug)


def get(path, **kw):
    return requests.get(url(path), **kw)


def assert_view(r, status=200):
    """A view's answer: its headers; the body as JSON (None for HEAD)."""
    assert r.status_code == status, (r.status_code, r.headers, r.text[:2000])
    assert r.headers["Content-Type"] == JSON_TYPE, r.headers
    assert ETAG_RE.match(r.headers.get("ETag", "")), r.headers
    assert r.headers.get("Cache-Control") == "private, no-cache", r.headers
    assert r.headers.get("X-Request-Id"), r.headers
    if r.request.method == "HEAD":
        assert r.content == b""
        return None
    return r.json()


def assert_complete(r):
    """A view with every part: no errors[], no X-Encore-Partial."""
    body = assert_view(r)
    assert "errors" not in body, body.get("errors")
    assert "X-Encore-Partial" not in r.headers, r.headers
    return body


def assert_partial(r, failed):
    """A 200 view whose optional parts failed as failed says, [(part,
    status)] in configuration order: each null, listed in errors[] and in
    X-Encore-Partial."""
    body = assert_view(r)
    assert body.get("errors") == [{"part": p, "status": s} for p, s in failed], body.get("errors")
    assert list(body)[-1] == "errors", list(body)
    assert r.headers.get("X-Encore-Partial") == ", ".join(p for p, _ in failed), r.headers
    for p, _ in failed:
        assert body[p] is None, (p, body[p])
    return body


def log_offset():
    """Where nginx's error log ends now (log_problems_since reads on)."""
    log = RUN_DIR / "log" / "nginx-error.log"
    return log.stat().st_size if log.exists() else 0


def log_problems_since(offset):
    """Lines of nginx's error log after offset that mean trouble: a crashed
    process, a sanitizer report, an [alert] or [emerg]."""
    log = RUN_DIR / "log" / "nginx-error.log"
    with open(log, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    bad = re.compile(r"\[alert\]|\[emerg\]|" + NGINX_CRASH.pattern)
    return [line for line in text.splitlines() if bad.search(line)]


def _key(path):
    return path.rsplit("/", 1)[-1]


class FakeUpstream:
    """See the module's docstring.  Paths: /r/<key> answers the document
    add() returned the key of; /echo answers what it received."""

    def __init__(self):
        self.docs = {}
        self.seen = collections.defaultdict(list)
        self.answered = set()
        self.cond = threading.Condition()
        self.holds = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                fake.handle(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release_all()
        self.server.shutdown()
        self.server.server_close()

    # ---- documents ---------------------------------------------------------------

    def add(self, body=None, status=200, ctype="application/json", raw=None, hold=False,
            after=(), count=False, echo=False):
        """A document: its path under the fake ("r/<key>"; methods taking
        a path take it with any prefix).  body: JSON (default {"doc":
        key}); raw: the bytes instead; hold: answer only once release(path)
        is called; after: answer only once these documents (paths) were
        answered; count: the body is {"hits": N}, N the requests so far;
        echo: the body is the request's path, query and headers."""
        key = uuid.uuid4().hex
        if raw is None and body is None and not count and not echo:
            body = {"doc": key}
        doc = {"status": status, "ctype": ctype, "count": count, "echo": echo,
               "raw": raw if raw is not None else json.dumps(body).encode(),
               "hold": threading.Event() if hold else None,
               "after": [_key(a) for a in after]}
        if doc["hold"] is not None:
            self.holds.append(doc["hold"])
        self.docs[key] = doc
        return "r/" + key

    def release(self, path):
        self.docs[_key(path)]["hold"].set()

    def release_all(self):
        for h in self.holds:
            h.set()

    def requests(self, path):
        """What the document at path received: [{"query", "headers"}]."""
        with self.cond:
            return list(self.seen[_key(path)])

    def wait_asked(self, path, n=1, timeout=WAIT):
        """Until the document at path was asked for n times."""
        key = _key(path)
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.seen[key]) >= n, timeout), \
                "%s was not asked for %d times" % (path, n)

    # ---- serving -----------------------------------------------------------------

    def handle(self, h):
        parsed = urllib.parse.urlsplit(h.path)
        seen = {"path": parsed.path, "query": parsed.query,
                "headers": {k.lower(): v for k, v in h.headers.items()}}
        if parsed.path == "/echo":
            key, doc = "echo", {"status": 200, "ctype": "application/json", "count": False,
                                "echo": True, "raw": b"", "hold": None, "after": []}
        else:
            key = parsed.path[len("/r/"):] if parsed.path.startswith("/r/") else None
            doc = self.docs.get(key)
        with self.cond:
            self.seen[key].append(seen)
            hits = len(self.seen[key])
            self.cond.notify_all()
        if doc is None:
            return self.reply(h, 404, "application/problem+json",
                              b'{"type":"about:blank","title":"Not Found","status":404,'
                              b'"detail":"no such document"}')
        if doc["hold"] is not None:
            doc["hold"].wait(WAIT)
        if doc["after"]:
            with self.cond:
                self.cond.wait_for(lambda: all(k in self.answered for k in doc["after"]),
                                   WAIT)
        raw = doc["raw"]
        if doc["count"]:
            raw = json.dumps({"hits": hits}).encode()
        if doc["echo"]:
            raw = json.dumps(seen).encode()
        self.reply(h, doc["status"], doc["ctype"], raw)
        with self.cond:
            self.answered.add(key)
            self.cond.notify_all()

    @staticmethod
    def reply(h, status, ctype, raw):
        try:
            h.send_response(status)
            if ctype is not None:
                h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(raw)))
            h.end_headers()
            h.wfile.write(raw)
        except OSError:
            pass                # nginx gave up on the part: nobody to answer


def b64(n):
    """n bytes of printable filler."""
    return base64.b64encode(b"\x00" * (n * 3 // 4 + 3)).decode()[:n]
