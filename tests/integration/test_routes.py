"""The route module at the edge (issue 4): conf/routes.conf against the
running stack — 404/405/Allow before 401/403, OPTIONS, HEAD, literal beats
{param}, policies with the jwt module, %2F in a parameter, request ids,
per-route body limits, the contract's rate limit on a private nginx rendered
from the same files, error pages, and configuration errors that name the
file and line."""
import http.client
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from conftest import (EDGE, RUN_DIR, assert_problem, free_port, login, nginx_log_problems,
                      register, stack, url, worker_request)
from test_metrics import private_nginx  # noqa: F401 (a fixture)

SECURITY_HEADERS = ("X-Request-Id", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy", "Content-Security-Policy")
NGINX = os.environ.get("ENCORE_NGINX_BIN", "/usr/sbin/nginx")
ADMIN_PASSWORD = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")


def bearer(token):
    return {"Authorization": "Bearer " + token}


@pytest.fixture(scope="module")
def user_token():
    user, pw = register()
    return login(user["username"], pw)["access_token"]


@pytest.fixture(scope="module")
def admin_token():
    return login("admin", ADMIN_PASSWORD)["access_token"]


def access_log_entry(request_id, timeout=5.0):
    log = RUN_DIR / "log" / "nginx-access.log"
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in reversed(log.read_text(errors="replace").splitlines()):
            if request_id in line:
                return json.loads(line)
        time.sleep(0.1)
    raise AssertionError("no access log line for %s" % request_id)


def assert_security_headers(r):
    for h in SECURITY_HEADERS:
        assert h in r.headers, (r.status_code, h, r.headers)


# ---- 404 / 405 / OPTIONS / HEAD ----------------------------------------------------------

def test_unknown_paths_are_404_problem():
    for path in ("/api/v1/nope", "/api/v1/users/a/b", "/api/v1/artists/",
                 "/api/v1/auth/me/", "/api/", "/api/v1/views/home/x"):
        r = requests.get(url(path))
        assert_problem(r, 404)
        assert_security_headers(r)
        assert access_log_entry(r.headers["X-Request-Id"])["route"] == ""


def test_wrong_method_is_405_with_allow():
    r = requests.delete(url("/api/v1/auth/login"))
    assert_problem(r, 405)
    assert r.headers["Allow"] == "POST, OPTIONS"
    assert_security_headers(r)
    r = requests.put(url("/api/v1/users/" + str(uuid.uuid4())))
    assert_problem(r, 405)
    assert r.headers["Allow"] == "GET, HEAD, PATCH, OPTIONS"
    r = requests.request("PROPFIND", url("/api/v1/artists"))
    assert_problem(r, 405)
    assert r.headers["Allow"] == "GET, HEAD, POST, OPTIONS"


def test_options_is_204_with_allow():
    r = requests.options(url("/api/v1/chat/sessions/x/messages"))
    assert r.status_code == 204
    assert r.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert r.content == b""
    assert_security_headers(r)
    assert_problem(requests.options(url("/api/v1/nope")), 404)


def test_head_where_get_is():
    g = requests.get(url("/.well-known/jwks.json"))
    h = requests.head(url("/.well-known/jwks.json"))
    assert g.status_code == h.status_code == 200
    assert h.content == b""
    assert access_log_entry(h.headers["X-Request-Id"])["route"] == "jwks"
    r = requests.head(url("/api/v1/auth/login"))
    assert r.status_code == 405 and r.headers["Allow"] == "POST, OPTIONS"


# ---- order: route, then credentials, then body --------------------------------------------

def test_404_and_405_precede_401():
    bad = bearer("not.a.token")
    assert_problem(requests.get(url("/api/v1/nope"), headers=bad), 404)
    r = requests.post(url("/api/v1/auth/me"), headers=bad)
    assert_problem(r, 405)
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS"
    # the route exists: now the invalid token is refused
    r = requests.get(url("/api/v1/auth/me"), headers=bad)
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_credentials_precede_the_body_limit(user_token):
    big = {"body": "x" * 300000}
    # a user route without a token: 401, not 413
    r = requests.post(url("/api/v1/posts/%s/comments" % uuid.uuid4()), json=big)
    assert_problem(r, 401)
    # with one: the comment route takes 256k
    r = requests.post(url("/api/v1/posts/%s/comments" % uuid.uuid4()), json=big,
                      headers=bearer(user_token))
    assert_problem(r, 413)
    assert_security_headers(r)
    entry = access_log_entry(r.headers["X-Request-Id"])
    assert entry["route"] == "comments_create" and entry["status"] == 413
    # posts take 1m: the same body passes the edge to the content worker,
    # which refuses it (no title, a body over 50,000 characters: 422), or
    # 502 problem+json when the worker is not part of the stack
    r = requests.post(url("/api/v1/posts"), json=big, headers=bearer(user_token))
    assert r.status_code in (422, 502), r.status_code
    assert r.headers["Content-Type"].startswith(("application/json",
                                                 "application/problem+json"))
    # and nothing passes 1m
    r = requests.post(url("/api/v1/posts"), json={"body": "x" * (1 << 20)},
                      headers=bearer(user_token))
    assert_problem(r, 413)


# The longest text each route takes (CONTRACT.md, in characters), every
# character one outside the BMP: JSON escapes each as a \uXXXX\uXXXX
# surrogate pair, 12 bytes (Python's json.dumps does so by default).
ASTRAL = "\U0001F3B5"
LARGEST_BODIES = [
    ("POST", "/api/v1/posts", "posts_create",
     {"title": ASTRAL * 200, "body": ASTRAL * 50000, "status": "published",
      "tags": [chr(0x1F3B5 + i) * 50 for i in range(10)]}),
    ("PATCH", "/api/v1/posts/%s" % uuid.uuid4(), "posts_patch",
     {"title": ASTRAL * 200, "body": ASTRAL * 50000}),
    ("POST", "/api/v1/posts/%s/comments" % uuid.uuid4(), "comments_create",
     {"body": ASTRAL * 10000, "parent_id": str(uuid.uuid4())}),
    ("PATCH", "/api/v1/comments/%s" % uuid.uuid4(), "comments_patch",
     {"body": ASTRAL * 10000}),
    ("POST", "/api/v1/feedback", "feedback_create",
     {"category": "other", "subject": ASTRAL * 200, "message": ASTRAL * 10000}),
    ("POST", "/api/v1/chat/sessions/%s/messages" % uuid.uuid4(), "chat_messages_create",
     {"content": ASTRAL * 10000}),
]


# the answer of a route's worker to its largest valid body, when it runs
RUNNING = {
    "posts_create": 201,
    "posts_patch": 404,         # a post that does not exist
    "feedback_create": 201,     # a ticket, subject and message at their limits
    "comments_create": 404,     # on a post that does not exist
    "comments_patch": 404,      # a comment that does not exist
    "chat_messages_create": 404,    # in a session that does not exist
}


@pytest.mark.parametrize("method, path, route, body", LARGEST_BODIES,
                         ids=[b[2] for b in LARGEST_BODIES])
def test_the_largest_valid_body_passes_the_edge(user_token, method, path, route, body):
    # Regression: the limits were set in bytes for bodies CONTRACT.md
    # bounds in characters; a valid post of 50,000 characters escaped as
    # surrogate pairs is 600 KB and was refused with 413
    data = json.dumps(body).encode()
    assert len(data) > 100000
    r = requests.request(method, url(path), data=data, headers=dict(
        bearer(user_token), **{"Content-Type": "application/json"}))
    # the edge lets it through to the route's worker: when the worker runs
    # in the test stack (ENCORE_WORKERS) the answer is its own (RUNNING),
    # else the edge's 502 for an absent worker (not 413, nor 404/405 from
    # a wrong table), and the access log shows the worker's socket was tried
    entry = access_log_entry(r.headers["X-Request-Id"])
    assert entry["route"] == route, entry
    worker = entry["upstream_name"][len("encore_"):]
    sock = RUN_DIR / "run" / ("%s.sock" % worker)
    if sock.exists():
        assert route in RUNNING, "%s runs now: assert its own answer here" % worker
        assert r.status_code == RUNNING[route], (r.status_code, r.text[:300])
        assert entry["status"] == r.status_code, entry
        return
    assert_problem(r, 502)
    assert entry["status"] == 502 and entry["upstream"] == "unix:%s" % sock, entry


def test_the_largest_valid_artist_is_created(admin_token):
    # every field at its limit in characters outside the BMP: 133 KB of
    # JSON, which the edge's former 64k catalog limit refused with 413
    body = {"name": ASTRAL * 200, "slug": "largest-" + uuid.uuid4().hex,
            "bio": ASTRAL * 10000, "country": "IS", "formed_year": 1990,
            "genres": [chr(0x1F3B5 + i) * 50 for i in range(10)]}
    data = json.dumps(body).encode()
    assert len(data) > 128000
    r = requests.post(url("/api/v1/artists"), data=data, headers=dict(
        bearer(admin_token), **{"Content-Type": "application/json"}))
    assert r.status_code == 201, (r.status_code, r.text[:300])
    assert r.json()["bio"] == body["bio"]
    assert requests.delete(url(r.headers["Location"]),
                           headers=bearer(admin_token)).status_code == 204


def test_public_route_body_limit_is_413_problem():
    r = requests.post(url("/api/v1/auth/logout"), json={"refresh_token": "x" * 70000})
    assert_problem(r, 413)
    assert_security_headers(r)


# ---- policies -------------------------------------------------------------------------------

def test_user_route_without_identity_is_401_bearer():
    for method, path in (("GET", "/api/v1/auth/me"), ("PATCH", "/api/v1/users/me"),
                         ("POST", "/api/v1/feedback"), ("GET", "/api/v1/chat/sessions")):
        r = requests.request(method, url(path), json={})
        assert_problem(r, 401)
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert_security_headers(r)


def test_role_routes_are_403_below_the_role(user_token):
    for method, path in (("GET", "/api/v1/users"),
                         ("PATCH", "/api/v1/users/" + str(uuid.uuid4())),
                         ("POST", "/api/v1/artists"),
                         ("DELETE", "/api/v1/tracks/" + str(uuid.uuid4())),
                         ("PATCH", "/api/v1/feedback/" + str(uuid.uuid4()))):
        r = requests.request(method, url(path), json={}, headers=bearer(user_token))
        assert_problem(r, 403)
        assert r.headers["WWW-Authenticate"].startswith('Bearer error="insufficient_scope"')
        assert_security_headers(r)
        assert access_log_entry(r.headers["X-Request-Id"])["user_id"]


def test_role_routes_pass_with_the_role(admin_token):
    r = requests.get(url("/api/v1/users?q=adm"), headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    # a moderator route with an admin token reaches the catalog worker,
    # which judges the body
    r = requests.post(url("/api/v1/artists"), json={}, headers=bearer(admin_token))
    body = assert_problem(r, 422)
    assert {e["field"] for e in body["errors"]} == {"name", "slug"}
    assert access_log_entry(r.headers["X-Request-Id"])["route"] == "artists_create"


def test_public_route_with_and_without_token(user_token):
    r = requests.get(url("/.well-known/jwks.json"))
    assert r.status_code == 200
    r = requests.get(url("/.well-known/jwks.json"), headers=bearer(user_token))
    assert r.status_code == 200
    assert access_log_entry(r.headers["X-Request-Id"])["user_id"]
    # identity optional, but an invalid token is still refused
    assert_problem(requests.get(url("/.well-known/jwks.json"),
                                headers=bearer("a.b.c")), 401)


def test_literal_beats_param(user_token):
    me = requests.get(url("/api/v1/auth/me"), headers=bearer(user_token)).json()
    # /users/me is users_me_patch (user), /users/{id} is users_patch (admin)
    r = requests.patch(url("/api/v1/users/me"), json={"bio": "routed"},
                       headers=bearer(user_token))
    assert r.status_code == 200, r.text
    assert r.json()["bio"] == "routed"
    assert access_log_entry(r.headers["X-Request-Id"])["route"] == "users_me_patch"
    r = requests.patch(url("/api/v1/users/" + me["id"]), json={"bio": "x"},
                       headers=bearer(user_token))
    assert_problem(r, 403)
    # GET /users/me is not the profile of a user called "me"
    r = requests.get(url("/api/v1/users/me"))
    assert_problem(r, 405)
    assert r.headers["Allow"] == "PATCH, DELETE, OPTIONS"
    r = requests.get(url("/api/v1/users/" + me["id"]))
    assert r.status_code == 200
    assert access_log_entry(r.headers["X-Request-Id"])["route"] == "users_get"


# ---- paths ----------------------------------------------------------------------------------

def test_encoded_slash_stays_in_the_parameter():
    r = requests.get(url("/api/v1/users/a%2Fb"))
    # routed (the worker answers: no such user), not the edge's 404
    assert_problem(r, 404)
    assert access_log_entry(r.headers["X-Request-Id"])["route"] == "users_get"
    r = requests.get(url("/api/v1/users/a/b"))
    assert_problem(r, 404)
    assert access_log_entry(r.headers["X-Request-Id"])["route"] == ""


def test_normalised_paths_route():
    # dot segments and double slashes are resolved by nginx first
    for path in ("/api/v1/x/../auth/me", "/api/v1//auth/me", "/api/v1/%61uth/me"):
        r = requests.get(url(path))
        assert_problem(r, 401)
        assert access_log_entry(r.headers["X-Request-Id"])["route"] == "auth_me"


EDGE_HOST, EDGE_PORT = EDGE.split("//")[1].split(":")


def raw_get(path, headers):
    """GET with the path exactly as written (requests resolves dot segments
    itself before sending)."""
    conn = http.client.HTTPConnection(EDGE_HOST, EDGE_PORT, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_normalised_paths_forward_what_was_matched():
    # The edge matches the normalised path and checks that route's policy;
    # the worker must get that same path, not the raw one (which it would
    # route differently, or not at all).
    user, password = register()
    token = login(user["username"], password)["access_token"]
    raw = "/api/v1/x/../auth/me"
    assert worker_request("auth", "GET", raw, headers={
        "X-Encore-User-Id": user["id"], "X-Encore-User-Role": "user",
        "X-Encore-User-Name": user["username"]}).status_code == 404
    for path in (raw, "/api/v1//auth/me", "/api/v1/%61uth/me", "/api/v1/auth/./me",
                 "/api/v1/auth/x/../me?unused=1"):
        status, body = raw_get(path, bearer(token))
        assert status == 200, (path, status, body)
        assert json.loads(body)["id"] == user["id"], path


def raw_get_full(path, headers=None):
    """raw_get that also returns the answer's X-Request-Id."""
    conn = http.client.HTTPConnection(EDGE_HOST, EDGE_PORT, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("X-Request-Id")
    finally:
        conn.close()


def encoded_first(s):
    return "%%%02X" % ord(s[0]) + s[1:]


def test_deep_raw_path_with_dot_segments_routes_as_normalised():
    # Regression: with a "%" in the request line the raw path is matched
    # first, and the matcher gave up (404) at the depth of the deepest
    # route, before the dot segments that make the normalised path
    # /api/v1/users/<id> shorter
    user, _ = register()
    path = "/api/v1/users/a/b/c/d/../../../../" + encoded_first(user["id"])
    status, body, rid = raw_get_full(path)
    assert status == 200, (status, body)
    assert json.loads(body)["id"] == user["id"]
    entry = access_log_entry(rid)
    assert entry["route"] == "users_get" and entry["uri"] == path, entry
    # deeper than any route with nothing to shorten it: still the edge's 404
    status, body, rid = raw_get_full("/api/v1/users/a/b/c/d/e/f/g%41")
    assert status == 404
    assert access_log_entry(rid)["route"] == ""


def test_fragment_in_the_request_line_is_not_part_of_the_path():
    # Regression: the raw path was taken up to "?" with its "#...":
    # /api/v1/posts/%41#/comments was routed to comments_list (and the raw
    # path forwarded) while nginx's path is /api/v1/posts/A
    status, body, rid = raw_get_full("/api/v1/posts/%41#/comments")
    entry = access_log_entry(rid)
    assert entry["route"] == "posts_get", entry
    assert entry["uri"] == "/api/v1/posts/%41#/comments", entry
    # and what the worker gets is the path the edge matched
    user, _ = register()
    for path in ("/api/v1/users/%s#/x" % encoded_first(user["id"]),
                 "/api/v1/users/%s#frag?x=1" % encoded_first(user["id"])):
        status, body, rid = raw_get_full(path)
        assert status == 200, (path, status, body)
        assert json.loads(body)["id"] == user["id"], path
        assert access_log_entry(rid)["route"] == "users_get"


FAIL_OPEN = """
    upstream fail_open_up { server 127.0.0.1:%(up)d; }
    server {
        listen  127.0.0.1:%(up)d;
        location / { return 200 "reached the upstream\n"; }
    }
    server {
        listen  127.0.0.1:@PORT@;
        recursive_error_pages  on;
        encore_route_location  @r;
        encore_routes {
            GET  "/a"  a  fail_open_up  user;
            GET  "/p"  p  fail_open_up  public;
        }
        location = /a { encore_route on; }
        location = /p { encore_route on; }
        # @r is a route's named location; /b sends a request there with
        # no route of its own, after /a's match set $encore_upstream
        location @r {
            error_page  401 = /b;
            proxy_pass  http://$encore_upstream;
        }
        location = /b {
            error_page  418 = @r;
            return 418;
        }
        location / { return 204; }
    }
"""


def test_route_location_without_a_route_fails_closed(private_nginx):
    # Regression: a route's named location entered without a match (here
    # GET /a, refused 401 by its policy, whose error page leads back into
    # @r from /b) declined: the policy check was skipped, and proxy_pass
    # still forwarded to the upstream /a's match had left in
    # $encore_upstream. It answers 404 now.
    n = private_nginx(FAIL_OPEN % {"up": free_port()})
    r = requests.get(n.url("/p"))
    assert r.status_code == 200 and r.text == "reached the upstream\n"
    r = requests.get(n.url("/a"))
    assert r.status_code == 404, (r.status_code, r.text)
    assert "reached" not in r.text
    assert n.problems() == [], n.problems()


def test_web_ui_and_operational_paths_fall_through():
    r = requests.get(url("/some/client/route"))
    assert r.status_code == 200 and "<title>Encore</title>" in r.text
    assert requests.get(url("/healthz")).status_code == 200
    assert requests.post(url("/healthz")).status_code == 405


# ---- request ids, errors --------------------------------------------------------------------

def test_request_id_reaches_the_worker_and_the_log():
    r = requests.get(url("/.well-known/jwks.json"))
    rid = r.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    entry = access_log_entry(rid)
    assert entry["route"] == "jwks" and entry["upstream_name"] == "encore_auth"
    assert entry["status"] == 200 and entry["request_time"] >= 0
    assert entry["upstream_response_time"] != ""
    # the worker's lines carry the id (a read logs none: nginx's access log
    # has it, the worker's log.requests is off; a registration says so)
    name = "u" + uuid.uuid4().hex[:12]
    r = requests.post(url("/api/v1/auth/register"),
                      json={"username": name, "email": name + "@example.test",
                            "password": "correct horse battery"})
    assert r.status_code == 201, r.text
    rid = r.headers["X-Request-Id"]
    auth_log = (RUN_DIR / "log" / "auth.log").read_text(errors="replace")
    assert rid in auth_log


def test_worker_down_is_502_problem_with_route_in_log(user_token):
    # the chat worker stopped, then started again
    stack("stop-worker", "chat")
    try:
        r = requests.get(url("/api/v1/chat/sessions"), headers=bearer(user_token))
        assert_problem(r, 502)
        assert_security_headers(r)
    finally:
        stack("start-worker", "chat")
    entry = access_log_entry(r.headers["X-Request-Id"])
    assert entry["route"] == "chat_sessions_list" and entry["upstream_name"] == "encore_chat"
    r = requests.get(url("/api/v1/chat/sessions"), headers=bearer(user_token))
    assert r.status_code == 200, r.text


# ---- the contract's rate limit, on a private nginx ------------------------------------------

@pytest.fixture
def contract_nginx():
    """The stack's rendered configuration with CONTRACT.md's 5r/s burst 10,
    on a free port, with its own pid, logs and temp paths."""
    src = RUN_DIR / "conf"
    base = RUN_DIR / ("nginx-contract-%s" % uuid.uuid4().hex[:8])
    conf = base / "conf"
    conf.mkdir(parents=True)
    port = free_port()
    run = str(RUN_DIR)
    for f in src.glob("*.conf"):
        text = f.read_text()
        text = text.replace(run + "/run/nginx.pid", str(base / "nginx.pid"))
        text = text.replace(run + "/log/", str(base) + "/")
        text = text.replace(run + "/nginx/", str(base) + "/tmp/")
        text = text.replace(run + "/conf/modules.conf", str(conf / "modules.conf"))
        # plain http only: the stack's tls.d/ would listen on its https port
        text = text.replace(run + "/conf/tls.d/", str(conf / "tls.d") + "/")
        text = re.sub(r"listen\s+127\.0\.0\.1:\d+;", "listen 127.0.0.1:%d;" % port, text)
        text = re.sub(r"rate=\S+;", "rate=5r/s;", text)
        text = re.sub(r"burst=\d+", "burst=10", text)
        (conf / f.name).write_text(text)
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (base / "tmp" / d).mkdir(parents=True)
    os.chmod(base, 0o755)
    for d in (base / "tmp").iterdir():
        os.chmod(d, 0o777)
    cmd = [NGINX, "-p", str(base) + "/", "-c", str(conf / "nginx.conf"), "-e", str(base / "error.log")]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    edge = "http://127.0.0.1:%d" % port
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if requests.get(edge + "/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield edge, base
    subprocess.run(cmd + ["-s", "quit"], capture_output=True, timeout=30)
    deadline = time.time() + 10
    while (base / "nginx.pid").exists() and time.time() < deadline:
        time.sleep(0.1)
    # error.log has what nginx says before it reads its configuration (-e);
    # the rendered nginx.conf's error_log sends the rest, and the ASan
    # reports of its processes, to nginx-error.log
    problems = nginx_log_problems(base / "error.log", base / "nginx-error.log")
    assert (base / "nginx-error.log").exists(), "no nginx-error.log in %s" % base
    assert problems == [], "\n".join(problems)
    shutil.rmtree(base, ignore_errors=True)


def test_auth_rate_limit_is_5rs_burst_10_with_retry_after(contract_nginx):
    edge, _ = contract_nginx
    s = requests.Session()
    statuses, limited = [], None
    start = time.monotonic()
    # 16 at once overrun 1 + burst 10 unless the bucket refilled meanwhile
    # (a loaded machine, an ASan nginx): then go on until one is refused
    while len(statuses) < 16 or (limited is None and len(statuses) < 200):
        # an invalid body: the worker answers at once (a real login hashes
        # a password, slow enough for the bucket to refill)
        r = s.post(edge + "/api/v1/auth/login", json={})
        statuses.append(r.status_code)
        if r.status_code == 429 and limited is None:
            limited = r
    elapsed = time.monotonic() - start
    passed = [c for c in statuses if c != 429]
    # 1 + burst 10 at once from a fresh zone; 5r/s refills one more per
    # 200 ms taken, so the bound grows with the time the requests took
    assert 429 not in statuses[:11], statuses
    assert 11 <= len(passed) <= 11 + math.ceil(elapsed * 5), (statuses, elapsed)
    assert set(passed) <= {400, 401, 422}, statuses
    assert limited is not None, (statuses, elapsed)
    assert_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert_security_headers(limited)
    # the limit is per route family: logout is not limited
    assert s.post(edge + "/api/v1/auth/logout", json={}).status_code != 429
    # and it refills at 5 per second
    time.sleep(1.1)
    assert s.post(edge + "/api/v1/auth/register", json={}).status_code != 429


def test_rate_limited_post_keeps_its_method(contract_nginx):
    # Regression: an error page's redirect makes the request a GET, so a
    # POST refused with 429 was logged as "GET /_error/429" and counted
    # with method="GET"
    from test_metrics import parse, samples

    edge, base = contract_nginx
    s = requests.Session()
    limited = None
    for _ in range(200):
        r = s.post(edge + "/api/v1/auth/login?x=1", json={})
        if r.status_code == 429:
            limited = r
            break
    assert limited is not None
    rid = limited.headers["X-Request-Id"]
    log = base / "nginx-access.log"
    deadline = time.time() + 5
    entry = None
    while entry is None and time.time() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if rid in line:
                entry = json.loads(line)
        time.sleep(0.05)
    assert entry, "no access log line for %s" % rid
    assert entry["method"] == "POST" and entry["uri"] == "/api/v1/auth/login?x=1", entry
    assert entry["status"] == 429 and entry["route"] == "auth_login", entry
    fams = parse(requests.get(edge + "/metrics").text)
    assert sum(samples(fams, "encore_http_requests_total", route="auth_login",
                       method="POST", status="4xx").values()) >= 1
    assert not samples(fams, "encore_http_requests_total", route="auth_login",
                       method="GET")


# ---- configuration errors name the file and line -------------------------------------------

def nginx_t(tmp_path, routes, extra=""):
    so = (RUN_DIR / "conf" / "modules.conf").read_text().strip()
    (tmp_path / "logs").mkdir(exist_ok=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text("""%s
pid %s/nginx.pid;
error_log %s/error.log;
events {}
http {
    upstream up { server 127.0.0.1:9; }
    server {
        listen 127.0.0.1:%d;
        encore_routes {
%s
        }
        %s
    }
}
""" % (so, tmp_path, tmp_path, free_port(), routes, extra))
    r = subprocess.run([NGINX, "-t", "-p", str(tmp_path) + "/", "-c", str(conf),
                        "-e", str(tmp_path / "error.log")],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stderr, str(conf)


def test_config_errors_name_file_and_line(tmp_path):
    rc, err, conf = nginx_t(tmp_path, '            GET "/a/{id}" a up public;\n'
                                      '            GET "/a/{x}"  b up public;')
    assert rc != 0
    assert 'route "b" (GET /a/{x}) conflicts with route "a" (GET /a/{id}) declared in %s:10' % conf in err, err
    assert "%s:11" % conf in err, err

    rc, err, conf = nginx_t(tmp_path, '            GET "/a/{id}" a up public;\n'
                                      '            PATCH "/a/{x}"  b up admin;')
    assert rc != 0 and "other parameter names" in err and "%s:11" % conf in err, err

    rc, err, conf = nginx_t(tmp_path, '            GET "/a" a up public;\n'
                                      '            GET "/b" a up public;')
    assert rc != 0 and 'duplicate route name "a"' in err, err

    rc, err, conf = nginx_t(tmp_path, '            GET "/a" a nowhere public;')
    assert rc != 0 and 'upstream "nowhere"' in err and "%s:10" % conf in err, err

    rc, err, conf = nginx_t(tmp_path, '            GET "/a" a up public location=@nope;')
    assert rc != 0 and 'location "@nope"' in err and "%s:10" % conf in err, err

    rc, err, conf = nginx_t(tmp_path, '            GET "/a" a up root;')
    assert rc != 0 and 'invalid policy "root"' in err, err

    rc, err, conf = nginx_t(tmp_path, '            GET "/a/../b" a up public;')
    assert rc != 0 and "dot segment" in err, err

    rc, err, conf = nginx_t(tmp_path, '            GET "/a" a up public location=@x;',
                            "location @x { return 204; }")
    assert rc == 0, err


def test_upstream_locations_and_their_config_errors(tmp_path):
    # encore_route_location UPSTREAM @name: that upstream's routes continue
    # there; the location must forward to the route's upstream when its
    # proxy_pass names one literally (the log and the metrics label the
    # request with the route's upstream)
    route = '            GET "/a" a up public;'
    rc, err, conf = nginx_t(tmp_path, route,
                            "encore_route_location up @x; "
                            "location @x { proxy_pass http://up; }")
    assert rc == 0, err

    rc, err, conf = nginx_t(tmp_path, route,
                            "encore_route_location up @x; "
                            "location @x { proxy_pass http://127.0.0.2:9; }")
    assert rc != 0, err
    assert 'route "a" names upstream "up" but continues in location "@x", whose ' \
        'proxy_pass goes to "127.0.0.2" in %s:10' % conf in err, err

    # location= too, and over the upstream's location
    rc, err, conf = nginx_t(tmp_path, '            GET "/a" a up public location=@y;',
                            "encore_route_location up @x; "
                            "location @x { proxy_pass http://up; } "
                            "location @y { proxy_pass http://127.0.0.2:9; }")
    assert rc != 0 and 'location "@y", whose proxy_pass goes to "127.0.0.2"' in err, err

    # a proxy_pass with variables is not checked
    rc, err, conf = nginx_t(tmp_path, route,
                            "encore_route_location up @x; "
                            "location @x { proxy_pass http://$encore_upstream; }")
    assert rc == 0, err

    rc, err, conf = nginx_t(tmp_path, route,
                            "encore_route_location nowhere @x; location @x { return 204; }")
    assert rc != 0 and '"encore_route_location" names upstream "nowhere"' in err \
        and "%s:12" % conf in err, err

    rc, err, conf = nginx_t(tmp_path, route, "encore_route_location up @nope;")
    assert rc != 0 and '"encore_route_location" names location "@nope"' in err \
        and "%s:12" % conf in err, err

    rc, err, conf = nginx_t(tmp_path, route,
                            "encore_route_location up @x; encore_route_location up @x; "
                            "location @x { return 204; }")
    assert rc != 0 and 'duplicate "encore_route_location" for upstream "up"' in err, err

    rc, err, conf = nginx_t(tmp_path, route, "encore_route_location up x;")
    assert rc != 0 and 'must name a named location, not "x"' in err, err

    rc, err, conf = nginx_t(tmp_path, route, "encore_route_location @x; "
                            "encore_route_location @x; location @x { return 204; }")
    assert rc != 0 and '"encore_route_location" directive is duplicate' in err, err
