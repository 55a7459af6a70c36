"""/readyz at the edge (ngx_modules/ops): asks every running worker's /readyz
in parallel subrequests and answers 200, or 503 naming the workers that are
not ready. The workers asked are the ones the stack runs (ENCORE_WORKERS,
rendered into conf/ops.conf by auto/stack)."""
import os
import time

import pytest
import requests

from conftest import assert_problem, stack, url, wait_until
from test_metrics import private_nginx  # noqa: F401 (a fixture)

WORKERS = os.environ.get("ENCORE_WORKERS", "auth probe").split()


def steadily_ready(n=20):
    return all(requests.get(url("/readyz")).status_code == 200 for _ in range(n))


@pytest.fixture(autouse=True)
def all_ready():
    """Fault tests that ran before (PostgreSQL restarted) leave workers
    catching up: each worker thread notices its lost connection on its
    next query, so /readyz can answer 503 a few more times. Start from a
    stack that answers ready again and again."""
    wait_until(steadily_ready, timeout=60, what="/readyz steadily 200")


def test_ready_when_every_worker_is():
    r = requests.get(url("/readyz"))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("X-Request-Id")
    body = r.json()
    assert body["status"] == "ready"
    # and the revocation feed (conf/jwt.conf has a revocation zone)
    assert set(body["workers"]) == set(WORKERS) | {"revocations"}
    for w in WORKERS + ["revocations"]:
        assert body["workers"][w] == {"ready": True, "status": 200}


def test_head_and_wrong_method():
    r = requests.head(url("/readyz"))
    assert r.status_code == 200
    assert r.content == b""
    assert requests.post(url("/readyz"), data=b"x").status_code == 405


@pytest.mark.skipif("probe" not in WORKERS, reason="needs the probe worker")
def test_a_stopped_worker_is_named_and_counted():
    from test_metrics import delta, parse, scrape, settled_scrape

    before = parse(scrape())
    stack("stop-worker", "probe")
    try:
        r = requests.get(url("/readyz"))
        body = assert_problem(r, 503)
        assert body["not_ready"] == ["probe"], body
        assert "probe" in body["detail"]
        assert body["workers"]["probe"]["ready"] is False
        assert body["workers"]["probe"]["status"] in (502, 504)
        for w in WORKERS:
            if w != "probe":
                assert body["workers"][w]["ready"] is True, body

        # the edge keeps answering, and serves the others' metrics
        assert requests.get(url("/metrics/probe")).status_code == 502
        if "auth" in WORKERS:
            assert requests.get(url("/metrics/auth")).status_code == 200
        after = settled_scrape(before, lambda a: sum(delta(
            before, a, "encore_upstream_failures_total", upstream="encore_probe").values()) >= 1
            and sum(delta(before, a, "encore_http_requests_total",
                          route="readyz", status="5xx").values()) >= 1)
        fails = delta(before, after, "encore_upstream_failures_total",
                      upstream="encore_probe")
        assert sum(fails.values()) == 1, fails
        ready503 = delta(before, after, "encore_http_requests_total",
                         route="readyz", status="5xx")
        assert sum(ready503.values()) == 1, ready503
    finally:
        stack("start-worker", "probe")

    deadline = time.time() + 30
    while time.time() < deadline:
        r = requests.get(url("/readyz"))
        if r.status_code == 200:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    assert r.json()["workers"]["probe"]["ready"] is True


def test_many_concurrent_readyz():
    # parallel subrequests per request, many requests at once: no mixing up
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(lambda _: requests.get(url("/readyz")), range(40)))
    for r in results:
        assert r.status_code == 200, r.text
        assert set(r.json()["workers"]) == set(WORKERS) | {"revocations"}


def test_long_worker_names_fit_the_answer(private_nginx):
    # Regression: the 503 body was sized for two copies of each name but
    # holds three (detail, not_ready, workers), and ngx_sprintf() does not
    # bound: names of the 64 bytes encore_readyz accepts overran the
    # buffer (a heap overflow, caught by ASan or glibc). Every worker here
    # answers 503, so every name is written three times.
    names = ["w%02d-" % i + "x" * 60 for i in range(40)]
    assert all(len(n) == 64 for n in names)
    n = private_nginx("""
    server {
        listen  127.0.0.1:@PORT@;
        location = /readyz { encore_readyz %s; encore_readyz_uri /_r/; }
        location /_r/ { internal; return 503; }
        location / { return 204; }
    }
""" % " ".join(names))
    for _ in range(20):
        r = requests.get(n.url("/readyz"))
        body = assert_problem(r, 503)
        assert body["not_ready"] == names
        assert body["detail"] == "workers not ready: " + ", ".join(names)
        assert list(body["workers"]) == names
        assert all(w == {"ready": False, "status": 503}
                   for w in body["workers"].values())
        assert int(r.headers["Content-Length"]) == len(r.content)
    assert requests.get(n.url("/")).status_code == 204
    assert n.problems() == [], n.problems()


# ---- a worker's /readyz body is never read (regression) -----------------------------

class FakeWorker:
    """A unix-socket HTTP server posing as a worker (RUN/run/<name>.sock)
    that answers every request with the bytes `answer` holds, then closes."""

    def __init__(self, path):
        import socket
        import threading

        self.path = path
        self.answer = b""
        self.requests = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)           # nginx's workers run as www-data
        self.sock.listen(16)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    self.requests += 1
                    conn.sendall(self.answer)
                except OSError:
                    # a header-only subrequest hangs up once it has the header
                    pass

    def close(self):
        self.stopping = True
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


BIG = 4 * 1024 * 1024

# a worker's answer -> (status, ready) that /readyz reports for it
ANSWERS = {
    # Regression: /readyz read each worker's answer into one in-memory
    # buffer; a larger body made the subrequest fail with NGX_ERROR, which
    # closed the client's connection with no answer at all
    "huge-200": (lambda: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % BIG + b" " * BIG, 200, True),
    "huge-503": (lambda: b"HTTP/1.1 503 Service Unavailable\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % BIG + b"x" * BIG, 503, False),
    # a malformed chunked body did the same
    "bad-chunks-200": (lambda: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz-not-a-chunk-size\r\n{}\r\n", 200, True),
    "bad-chunks-503": (lambda: b"HTTP/1.1 503 Service Unavailable\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n"
                       b"fffffffffffffffffffff\r\n", 503, False),
    # only the header counts: one that nginx cannot parse is not ready
    "bad-header": (lambda: b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 502, False),
}


@pytest.mark.skipif("probe" not in WORKERS, reason="needs the probe worker")
@pytest.mark.parametrize("case", sorted(ANSWERS))
def test_a_worker_answer_body_never_fails_readyz(case):
    from conftest import RUN_DIR

    answer, status, ready = ANSWERS[case]
    stack("stop-worker", "probe")
    fake = FakeWorker(str(RUN_DIR / "run" / "probe.sock"))
    fake.answer = answer()
    try:
        for _ in range(3):
            r = requests.get(url("/readyz"), timeout=10)
            assert r.headers.get("X-Request-Id"), r.headers
            if ready:
                assert r.status_code == 200, r.text
                body = r.json()
            else:
                body = assert_problem(r, 503)
                assert body["not_ready"] == ["probe"], body
                assert "probe" in body["detail"], body
            assert body["workers"]["probe"] == {"ready": ready, "status": status}
            assert int(r.headers["Content-Length"]) == len(r.content)
        assert fake.requests >= 3
    finally:
        fake.close()
        stack("start-worker", "probe")
