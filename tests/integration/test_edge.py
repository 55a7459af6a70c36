"""The edge itself: health, request ids, problem+json error pages, security
headers, body limits, header limits, spoofed identity headers."""
import pytest
import requests

from conftest import EDGE, assert_problem, url
from test_metrics import private_nginx  # noqa: F401 (a fixture)

SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy", "Content-Security-Policy")


def test_healthz():
    r = requests.get(url("/healthz"))
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_every_answer_has_request_id_and_security_headers():
    for path in ("/healthz", "/api/v1/nope", "/", "/.well-known/jwks.json"):
        r = requests.get(url(path))
        assert len(r.headers.get("X-Request-Id", "")) >= 16, (path, r.headers)
        for h in SECURITY_HEADERS:
            assert h in r.headers, (path, h)


def test_request_ids_differ():
    a = requests.get(url("/healthz")).headers["X-Request-Id"]
    b = requests.get(url("/healthz")).headers["X-Request-Id"]
    assert a != b


def test_unknown_api_path_is_problem_404():
    r = requests.get(url("/api/v1/does-not-exist"))
    assert_problem(r, 404)
    for h in SECURITY_HEADERS:
        assert h in r.headers


def test_web_ui_is_served():
    r = requests.get(url("/"))
    assert r.status_code == 200
    assert "<title>Encore</title>" in r.text
    r = requests.get(url("/some/client/route"))
    assert r.status_code == 200 and "<title>Encore</title>" in r.text


def test_oversized_headers_are_problem_431():
    # one header line over large_client_header_buffers (16k): nginx's 494,
    # which conf/errors.conf answers as 431
    r = requests.get(url("/healthz"), headers={"X-Big": "a" * 20000})
    assert_problem(r, 431)


def test_worker_down_is_problem_502():
    # a socket nobody listens on is a dead worker: the chat worker
    # stopped, then started again
    from conftest import RUN_DIR, login, register, stack

    user, pw = register()
    token = login(user["username"], pw)["access_token"]
    stack("stop-worker", "chat")
    try:
        assert not (RUN_DIR / "run" / "chat.sock").exists()
        r = requests.get(url("/api/v1/chat/sessions"),
                         headers={"Authorization": "Bearer " + token})
        body = assert_problem(r, 502)
        assert body["title"] == "Bad Gateway", body
        assert r.headers["X-Request-Id"]
    finally:
        stack("start-worker", "chat")
    r = requests.get(url("/api/v1/chat/sessions"),
                     headers={"Authorization": "Bearer " + token})
    assert r.status_code == 200, r.text


def test_spoofed_identity_headers_do_not_reach_workers():
    r = requests.post(url("/api/v1/auth/logout"), json={},
                      headers={"X-Encore-User-Id": "00000000-0000-0000-0000-000000000000",
                               "X-Encore-User-Role": "admin"})
    # logout without a token is 204 (nothing to revoke, the cookies are
    # cleared): no identity is taken from the client, which would make
    # it a logout of that user (test_jwt_edge.py checks what a worker
    # receives header by header)
    assert r.status_code == 204, r.text
    assert r.content == b""


# ---- statuses nginx answers itself: problem+json too (regression) ------------------------

def raw_request(data, port=None):
    """Send bytes as they are (no client library would send these) and
    return (status, headers as a list of (name, value), body)."""
    import socket

    port = port or int(EDGE.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:]]
    return status, headers, body


def header(headers, name):
    values = [v for k, v in headers if k.lower() == name.lower()]
    assert len(values) <= 1, (name, headers)
    return values[0] if values else None


def assert_raw_problem(status, headers, body, want):
    import json

    assert status == want, (status, headers, body)
    assert header(headers, "Content-Type").startswith("application/problem+json"), headers
    problem = json.loads(body)
    assert problem["status"] == want and problem["title"] and problem["detail"], problem
    for h in SECURITY_HEADERS + ("X-Request-Id",):
        assert header(headers, h), (h, headers)


def test_unknown_transfer_encoding_is_problem_501():
    # Regression: nginx's HTML page
    status, headers, body = raw_request(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: gzip\r\nConnection: close\r\n\r\n")
    assert_raw_problem(status, headers, body, 501)


def test_other_http_version_is_problem_505():
    # Regression: nginx's HTML page
    from test_routes import access_log_entry

    status, headers, body = raw_request(
        b"GET /healthz HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert_raw_problem(status, headers, body, 505)
    # logged, with no method: the request line was not accepted (under
    # UBSan, logging an empty $encore_request_method as a NULL pointer
    # killed the worker before this line was written)
    entry = access_log_entry(header(headers, "X-Request-Id"))
    assert entry["status"] == 505 and entry["method"] == "", entry


@pytest.mark.parametrize("path, allow", [
    # the route table's methods for an API path, GET, HEAD elsewhere
    ("/api/v1/auth/login", "POST, OPTIONS"),
    ("/api/v1/users/42", "GET, HEAD, PATCH, OPTIONS"),
    ("/some/client/route", "GET, HEAD"),
    ("/healthz?x=1", "GET, HEAD"),
])
def test_trace_is_problem_405_with_allow(path, allow):
    # Regression: nginx refuses TRACE itself, before any location, and its
    # 405 had no Allow (RFC 9110 15.5.6 requires one)
    status, headers, body = raw_request(
        b"TRACE %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    assert_raw_problem(status, headers, body, 405)
    assert header(headers, "Allow") == allow, headers


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "QUERY"])
def test_operational_405_has_allow(path, method):
    # Regression (Schemathesis, unsupported_method; issue 9's security
    # review again): /healthz answered any method 200
    r = requests.request(method, url(path), data=b"x")
    assert_problem(r, 405)
    assert r.headers["Allow"] == "GET, HEAD"


def test_route_405_keeps_its_own_allow_once():
    status, headers, body = raw_request(
        b"DELETE /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert_raw_problem(status, headers, body, 405)
    assert header(headers, "Allow") == "POST, OPTIONS"     # exactly one


def test_unsatisfiable_range_is_problem_416():
    # Regression: nginx's HTML page; the web UI's files are the only
    # answers nginx serves ranges of
    status, headers, body = raw_request(
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nRange: bytes=999999999-\r\n"
        b"Connection: close\r\n\r\n")
    assert_raw_problem(status, headers, body, 416)       # each header once
    assert header(headers, "Content-Range").startswith("bytes */")
    r = requests.get(url("/index.html"), headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and len(r.content) == 10


def error_page_statuses():
    """(status nginx hands to error_page, status answered) of conf/errors.conf."""
    import re

    from conftest import ROOT

    text = (ROOT / "conf" / "errors.conf").read_text()
    out = []
    for m in re.finditer(r"^error_page\s+(\d+)\s+(?:=(\d+)\s+)?/_error/(\d+);", text, re.M):
        out.append((int(m.group(1)), int(m.group(2) or m.group(1))))
    return out


def test_every_error_page_is_problem_json(private_nginx, tmp_path):
    # every status of errors.conf (411 among them, which nginx 1.22 itself
    # never sends) answered by a `return` in a private nginx that includes
    # the stack's rendered error pages
    import shutil

    from conftest import RUN_DIR

    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    for f in ("errors.conf", "errors-http.conf", "security-headers.conf",
              "security-headers-http.conf"):
        shutil.copy(RUN_DIR / "conf" / f, conf / f)
    statuses = error_page_statuses()
    assert {411, 416, 501, 505} <= {s for s, _ in statuses}, statuses
    n = private_nginx("""
    include errors-http.conf;
    include security-headers-http.conf;
    server {
        listen  127.0.0.1:@PORT@;
        include security-headers.conf;
        include errors.conf;
%s
        location / { return 204; }
    }
""" % "\n".join("        location = /s/%d { return %d; }" % (s, s) for s, _ in statuses))
    for status, answered in statuses:
        if status == 408:
            continue        # nginx closes the connection on 408 instead
        r = requests.get(n.url("/s/%d" % status))
        assert_problem(r, answered)
        if status != 416:
            # a 416 comes from the range filter, which has run add_header
            # already; errors.conf does not add the headers again
            for h in SECURITY_HEADERS:
                assert h in r.headers, (status, h)
        if status == 405:
            assert r.headers["Allow"] == "GET, HEAD"
    assert n.problems() == [], n.problems()
