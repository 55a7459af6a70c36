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
    assert set(body["workers"]) == set(WORKERS)
    for w in WORKERS:
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
        assert set(r.json()["workers"]) == set(WORKERS)


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
