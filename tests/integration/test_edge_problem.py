"""Every error a client sees is problem+json, whoever produced it (issue 9,
a security review of the edge): nginx, the Encore modules, or a worker's
HTTP library refusing a request with a page of its own."""
import gzip
import json

import pytest
import requests

from conftest import RUN_DIR, assert_problem, register, login, url
from test_metrics import private_nginx  # noqa: F401 (a fixture)


def assert_no_library_page(r):
    text = r.text.lower()
    assert "<html" not in text and "microhttpd" not in text, r.text


# ---- too many header lines -----------------------------------------------------------------

def test_attack_600_short_headers_are_problem_431():
    # Regression: within large_client_header_buffers' bytes (33k here),
    # 600 lines reached the worker, whose libmicrohttpd ran out of
    # per-connection memory and answered 431 with its own HTML page naming
    # the library
    headers = {"X-Filler-%d" % i: "x" * 40 for i in range(600)}
    r = requests.get(url("/api/v1/artists?limit=1"), headers=headers, timeout=30)
    assert_no_library_page(r)
    body = assert_problem(r, 431)
    assert body["title"] == "Request Header Fields Too Large", body
    assert r.headers["X-Request-Id"]


def test_a_hundred_header_lines_reach_the_worker():
    # encore_client_max_headers is 100 (conf/nginx.conf); requests sends
    # four of its own (Host, User-Agent, Accept, Accept-Encoding, plus
    # Connection)
    headers = {"X-Filler-%d" % i: "x" * 100 for i in range(95)}
    r = requests.get(url("/api/v1/artists?limit=1"), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    headers["X-One-Too-Many"] = "x"
    r = requests.get(url("/api/v1/artists?limit=1"), headers=headers, timeout=30)
    assert_problem(r, 431)


# ---- the safety net: encore_problem_filter ----------------------------------------------------

def worker_socket():
    for name in ("auth", "catalog", "content", "probe"):
        sock = RUN_DIR / "run" / ("%s.sock" % name)
        if sock.exists():
            return sock
    pytest.skip("no worker is running")


FILTER_CONF = """
    encore_problem_filter  on;
    server {
        listen  127.0.0.1:@PORT@;
        large_client_header_buffers  4 16k;

        # a worker straight, without encore_client_max_headers: its own 431
        location /worker/ {
            proxy_pass          http://unix:%(sock)s:/;
            proxy_http_version  1.1;
            proxy_set_header    Connection "";
        }
        location /worker-unfiltered/ {
            encore_problem_filter  off;
            proxy_pass          http://unix:%(sock)s:/;
            proxy_http_version  1.1;
            proxy_set_header    Connection "";
        }

        # upstream answers of other types, with the headers that must stay
        location /up/ {
            proxy_pass  http://127.0.0.1:@PORT@/back/;
        }
        location /back/ {
            encore_problem_filter  off;
            default_type  text/html;
            location = /back/405 {
                add_header  Allow "GET, HEAD" always;
                return 405 "<html>nginx</html>";
            }
            location = /back/429 {
                add_header  Retry-After 7 always;
                return 429 "<html>slow down</html>";
            }
            location = /back/401 {
                add_header  WWW-Authenticate "Bearer" always;
                return 401 "<html>who?</html>";
            }
            location = /back/json500 {
                default_type  application/json;
                return 500 '{"error":"internal"}';
            }
            location = /back/problem409 {
                default_type  application/problem+json;
                return 409 '{"type":"about:blank","title":"Conflict","status":409,"detail":"kept"}';
            }
            location = /back/ok {
                return 200 "<html>fine</html>";
            }
        }

        # nginx's built-in page: a status with no error_page
        location = /builtin/412 { return 412; }
    }
"""


@pytest.fixture
def filtered(private_nginx):
    return private_nginx(FILTER_CONF % {"sock": worker_socket()})


def test_problem_filter_replaces_a_workers_html_431(filtered):
    # more short lines than the worker has memory for (workers/lib/http.c,
    # CONN_MEMORY_LIMIT), which the stack's edge refuses itself
    headers = {"h%d" % i: "x" for i in range(3000)}
    r = requests.get(filtered.url("/worker-unfiltered/healthz"), headers=headers,
                     timeout=30)
    # what the client saw before the filter (the test's premise)
    assert r.status_code == 431 and "<html" in r.text.lower(), r.text
    r = requests.get(filtered.url("/worker/healthz"), headers=headers, timeout=30)
    assert_no_library_page(r)
    body = assert_problem(r, 431)
    assert body == {"type": "about:blank", "title": "Request Header Fields Too Large",
                    "status": 431,
                    "detail": "a request header or the cookies are too large"}, body
    # the connection to the worker, and the worker, are fine
    assert requests.get(filtered.url("/worker/healthz")).status_code == 200
    assert filtered.problems() == [], filtered.problems()


@pytest.mark.parametrize("path, status, header, value", [
    ("/up/405", 405, "Allow", "GET, HEAD"),
    ("/up/429", 429, "Retry-After", "7"),
    ("/up/401", 401, "WWW-Authenticate", "Bearer"),
    ("/up/json500", 500, None, None),
    ("/builtin/412", 412, None, None),
])
def test_problem_filter_replaces_other_types_keeping_headers(filtered, path, status,
                                                             header, value):
    r = requests.get(filtered.url(path))
    assert_no_library_page(r)
    body = assert_problem(r, status)
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert "Content-Encoding" not in r.headers
    if header:
        assert r.headers[header] == value, r.headers
    # HEAD: the same headers, no body
    h = requests.head(filtered.url(path))
    assert h.status_code == status and h.content == b"", h.content
    assert h.headers["Content-Type"] == "application/problem+json", h.headers
    assert h.headers["Content-Length"] == r.headers["Content-Length"]
    assert body["title"]


def test_problem_filter_keeps_problems_and_successes(filtered):
    r = requests.get(filtered.url("/up/problem409"))
    body = assert_problem(r, 409)
    assert body["detail"] == "kept", body
    r = requests.get(filtered.url("/up/ok"))
    assert r.status_code == 200 and r.text == "<html>fine</html>", r.text


def test_the_stacks_errors_are_problem_json():
    # the jwt module's 401, the route module's 404/405 (error pages) and a
    # worker's 404: one shape
    bad = requests.get(url("/api/v1/auth/me"), headers={"Authorization": "Bearer x.y.z"})
    for r, status in ((bad, 401),
                      (requests.get(url("/api/v1/nope")), 404),
                      (requests.delete(url("/api/v1/auth/login")), 405),
                      (requests.get(url("/api/v1/artists/00000000-0000-4000-8000-000000000000")),
                       404)):
        body = assert_problem(r, status)
        assert body["type"] == "about:blank", body
    for r in bad, requests.get(url("/api/v1/nope")):
        # the edge's own: the writer's exact type and shape
        assert r.headers["Content-Type"] == "application/problem+json", r.headers
        assert r.content.endswith(b"}\n"), r.content


# ---- a body with a Content-Encoding ---------------------------------------------------------

def test_attack_gzip_body_is_problem_415():
    # Regression: a JSON body sent with Content-Encoding: gzip was parsed
    # as plain JSON (whatever its bytes)
    plain = json.dumps({"login": "nobody", "password": "x" * 10}).encode()
    for coding, data in (("gzip", gzip.compress(plain)), ("gzip", plain),
                         ("br", plain), ("identity, gzip", plain)):
        r = requests.post(url("/api/v1/auth/login"), data=data,
                          headers={"Content-Type": "application/json",
                                   "Content-Encoding": coding})
        body = assert_problem(r, 415)
        assert body["title"] == "Unsupported Media Type", body
        assert "Content-Encoding" in body["detail"], body
    # identity is no encoding: the login is answered (401: no such user)
    r = requests.post(url("/api/v1/auth/login"), data=plain,
                      headers={"Content-Type": "application/json",
                               "Content-Encoding": "identity"})
    assert_problem(r, 401)


def test_content_encoding_is_checked_after_route_and_credentials():
    # CONTRACT.md's order: route (405), credentials (401), then the body
    data = gzip.compress(b'{"title":"t","body":"b"}')
    h = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert_problem(requests.put(url("/api/v1/posts"), data=data, headers=h), 405)
    assert_problem(requests.post(url("/api/v1/posts"), data=data, headers=h), 401)
    user, pw = register()
    token = login(user["username"], pw)["access_token"]
    h["Authorization"] = "Bearer " + token
    assert_problem(requests.post(url("/api/v1/posts"), data=data, headers=h), 415)
    # a request without a body may carry the header
    r = requests.get(url("/api/v1/auth/me"),
                     headers={"Authorization": "Bearer " + token,
                              "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
