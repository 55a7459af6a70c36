"""Views when their parts fail (ngx_modules/aggregate; CONTRACT.md, Views):
test-only views written into the stack's server.d, whose parts go to a
fake upstream this module runs (views_support.FakeUpstream), so each part
can be stopped, slow past its timeout, answer garbage, a 500 or 1 MB, in
any order; and the real post view with its comments worker stopped.

Each test view takes its parts' documents from the query: ?a=up/r/<key>
asks the fake for the document add() made (/_tp/up/), ?a=down/x a port
nothing listens on (/_tp/down/: connection refused), ?a=cache/r/<key> the
fake through the parts' cache settings of conf/view-part.conf
(/_tp/cache/, a TTL long enough for the test)."""
import json
import socket
import uuid

import pytest
import requests

from conftest import RUN_DIR, assert_problem, free_port, stack, url, wait_until
from content_support import new_post, people  # noqa: F401
from views_support import (FakeUpstream, assert_complete, assert_partial, assert_view, b64,
                           get, log_offset, log_problems_since)

TIMEOUT = "3s"      # the test views' part timeout: what "slow" goes past (the
                    # others answer well within it, even on a loaded machine)

VIEWS_CONF = """
# test_views_faults.py: test-only views and their parts' locations
location /_tp/up/ {
    internal;
    proxy_pass              http://127.0.0.1:%(fake)d/;
    include                 proxy.conf;
    proxy_pass_request_body off;
    proxy_set_header        Content-Length "";
    proxy_read_timeout      5s;
}
location /_tp/down/ {
    internal;
    proxy_pass              http://127.0.0.1:%(down)d/;
    include                 proxy.conf;
}
location /_tp/cache/ {
    internal;
    proxy_pass              http://127.0.0.1:%(fake)d/;
    include                 proxy.conf;
    include                 view-part.conf;
    proxy_cache_valid       200 10m;
}

# three optional parts
location = /_tv/optional {
    encore_jwt             optional;
    encore_aggregate_part  a  /_tp/$arg_a  timeout=%(timeout)s;
    encore_aggregate_part  b  /_tp/$arg_b  timeout=%(timeout)s;
    encore_aggregate_part  c  /_tp/$arg_c  timeout=%(timeout)s;
}
# a required part and an optional one
location = /_tv/required {
    encore_jwt             optional;
    encore_aggregate_part  a  /_tp/$arg_a  required timeout=%(timeout)s;
    encore_aggregate_part  b  /_tp/$arg_b  timeout=%(timeout)s;
}
# a main part and an optional one
location = /_tv/main {
    encore_jwt             optional;
    encore_aggregate_part  a  /_tp/$arg_a  main timeout=%(timeout)s;
    encore_aggregate_part  b  /_tp/$arg_b  timeout=%(timeout)s;
}
# size caps: 512k, and the default (4m)
location = /_tv/sizes {
    encore_aggregate_part  small  /_tp/$arg_small  max_size=512k;
    encore_aggregate_part  big    /_tp/$arg_big;
}
# references to a first part's fields
location = /_tv/refs {
    encore_aggregate_part  first    /_tp/$arg_first  timeout=%(timeout)s;
    encore_aggregate_part  ids      "/_tp/up/echo?ids={first.ids}";
    encore_aggregate_part  few      "/_tp/up/echo?ids={first.ids}" max_items=2;
    encore_aggregate_part  one      "/_tp/up/echo?v={first.one}";
    encore_aggregate_part  num      "/_tp/up/echo?v={first.num}&w={first.deep.n}";
    encore_aggregate_part  empty    "/_tp/up/echo?v={first.empty}";
    encore_aggregate_part  obj      "/_tp/up/echo?v={first.obj}";
    encore_aggregate_part  missing  "/_tp/up/echo?v={first.nope}";
    encore_aggregate_part  nul      "/_tp/up/echo?v={first.nul}";
}
# where values go: pick, fields, deny, key=, merge
location = /_tv/shape {
    encore_aggregate_part  a  /_tp/$arg_a  key=group.first  fields=x,y;
    encore_aggregate_part  b  /_tp/$arg_b  key=group.second deny=secret;
    encore_aggregate_part  c  /_tp/$arg_c  merge;
    encore_aggregate_part  d  /_tp/$arg_d  pick=items fields=id;
}
"""

FAULTS = {
    # name: (the document's add() arguments, or None for a stopped part; status)
    "stopped": (None, 502),
    "slow": ({"hold": True}, 504),
    "not_json": ({"raw": b"<html>oops</html>", "ctype": "application/json"}, 502),
    "text_plain": ({"raw": b'{"a": 1}', "ctype": "text/plain"}, 502),
    "no_type": ({"raw": b'{"a": 1}', "ctype": None}, 502),
    "scalar": ({"raw": b'"just a string"'}, 502),
    "empty": ({"raw": b""}, 502),
    "truncated": ({"raw": b'{"a": [1, 2'}, 502),
    "status_500": ({"status": 500, "ctype": "application/problem+json",
                    "body": {"type": "about:blank", "title": "Internal Server Error",
                             "status": 500, "detail": "fake"}}, 500),
    "status_404": ({"status": 404, "ctype": "application/problem+json",
                    "body": {"type": "about:blank", "title": "Not Found", "status": 404,
                             "detail": "fake"}}, 404),
}


def _reload():
    stack("reload")


@pytest.fixture(scope="module")
def fake():
    f = FakeUpstream()
    d = RUN_DIR / "conf" / "server.d"
    d.mkdir(exist_ok=True)
    conf = d / "test-views.conf"
    conf.write_text(VIEWS_CONF % {"fake": f.port, "down": free_port(), "timeout": TIMEOUT})
    _reload()
    ping = "/_tv/optional?a=up/%s&b=up/%s&c=up/%s" % (f.add(), f.add(), f.add())
    # until the reloaded workers answer (before, the web UI's location does)
    wait_until(lambda: get(ping).headers.get("Content-Type", "").startswith("application/json"),
               what="the test views after a reload")
    yield f
    f.release_all()
    conf.unlink()
    _reload()
    f.close()


def doc(fake, fault=None, **kw):
    """?x= for a part: a document that answers well (its JSON), or one
    with fault (FAULTS)."""
    if fault is None:
        return "up/" + fake.add(**kw)
    args, _ = FAULTS[fault]
    if args is None:
        return "down/x"
    return "up/" + fake.add(**args)


def view(name, headers=None, method="GET", **parts):
    q = "&".join("%s=%s" % kv for kv in parts.items())
    return requests.request(method, url("/_tv/%s?%s" % (name, q)), headers=headers or {},
                            timeout=60)


def body_of(fake, arg):
    return json.loads(fake.docs[arg.split("/")[-1]]["raw"])


# ---- optional parts ------------------------------------------------------------------

@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("which", ["a", "b", "c"])
def test_a_failed_optional_part_is_null_and_reported(fake, fault, which):
    parts = {p: doc(fake, fault if p == which else None) for p in "abc"}
    r = view("optional", **parts)
    fake.release_all()
    body = assert_partial(r, [(which, FAULTS[fault][1])])
    assert list(body) == ["a", "b", "c", "errors"]
    for p in "abc":
        if p != which:
            assert body[p] == body_of(fake, parts[p])


def test_every_part_failing_is_still_200(fake):
    parts = {"a": doc(fake, "stopped"), "b": doc(fake, "status_500"), "c": doc(fake, "slow")}
    r = view("optional", **parts)
    fake.release_all()
    assert_partial(r, [("a", 502), ("b", 500), ("c", 504)])


def test_failures_are_listed_in_configuration_order(fake):
    # c fails at once, a only at its timeout: errors[] is still a, c
    parts = {"a": doc(fake, "slow"), "b": doc(fake), "c": doc(fake, "status_500")}
    r = view("optional", **parts)
    fake.release_all()
    body = assert_partial(r, [("a", 504), ("c", 500)])
    assert body["b"] == body_of(fake, parts["b"])


def test_members_are_in_configuration_order_when_the_first_part_is_slowest(fake):
    c = fake.add(body={"c": 3})
    b = fake.add(body={"b": 2}, after=[c])
    a = fake.add(body={"a": 1}, after=[b, c])
    r = view("optional", a="up/" + a, b="up/" + b, c="up/" + c)
    body = assert_complete(r)
    assert list(body) == ["a", "b", "c"]
    assert body == {"a": {"a": 1}, "b": {"b": 2}, "c": {"c": 3}}
    # the same answer, byte for byte, when they arrive the other way round
    a2 = fake.add(body={"a": 1})
    b2 = fake.add(body={"b": 2}, after=[a2])
    c2 = fake.add(body={"c": 3}, after=[a2, b2])
    r2 = view("optional", a="up/" + a2, b="up/" + b2, c="up/" + c2)
    assert r2.content == r.content and r2.headers["ETag"] == r.headers["ETag"]


def test_a_slow_part_costs_its_timeout_not_its_answer(fake):
    slow = doc(fake, "slow")
    r = view("optional", a=slow, b=doc(fake), c=doc(fake))
    # the fake still holds the part: the view did not wait for it
    assert fake.requests(slow) and not fake.docs[slow.split("/")[-1]]["hold"].is_set()
    fake.release_all()
    assert_partial(r, [("a", 504)])
    # and the connection the view came on serves the next request
    s = requests.Session()
    for _ in range(2):
        parts = {"a": doc(fake, "slow"), "b": doc(fake), "c": doc(fake)}
        r = s.get(url("/_tv/optional?" + "&".join("%s=%s" % kv for kv in parts.items())))
        fake.release_all()
        assert_partial(r, [("a", 504)])
    assert_complete(s.get(url("/_tv/optional?a=%s&b=%s&c=%s"
                              % (doc(fake), doc(fake), doc(fake)))))


# ---- required and main parts ---------------------------------------------------------------

def test_a_required_part_timing_out_is_504(fake):
    r = view("required", a=doc(fake, "slow"), b=doc(fake))
    fake.release_all()
    assert_problem(r, 504)
    assert "X-Encore-Partial" not in r.headers


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422, 500, 503])
def test_a_required_part_failing_passes_its_problem_through(fake, status):
    problem = {"type": "about:blank", "title": "Some Title", "status": status,
               "detail": "the fake says no %s" % uuid.uuid4().hex,
               "errors": [{"field": "x", "message": "y"}]}
    r = view("required", a=doc(fake, status=status, ctype="application/problem+json",
                               body=problem), b=doc(fake))
    assert_problem(r, status)
    assert r.json() == problem


@pytest.mark.parametrize("fault,status", [("stopped", 502), ("not_json", 502),
                                          ("text_plain", 502), ("scalar", 502),
                                          ("empty", 502)])
def test_a_required_part_answering_garbage_is_a_problem(fake, fault, status):
    r = view("required", a=doc(fake, fault), b=doc(fake))
    assert_problem(r, status)


def test_a_required_part_failing_without_problem_json_is_a_problem_of_its_status(fake):
    r = view("required", a=doc(fake, status=500, ctype="text/html",
                               raw=b"<html><body>Internal Server Error</body></html>"),
             b=doc(fake))
    body = assert_problem(r, 500)
    assert "<html" not in r.text, r.text
    assert body["title"] == "Internal Server Error"


def test_a_required_part_failing_under_head_has_no_body(fake):
    r = view("required", method="HEAD", a=doc(fake, "status_500"), b=doc(fake))
    assert r.status_code == 500 and r.content == b""
    assert r.headers["Content-Type"].startswith("application/problem+json")


def test_the_main_part_status_is_the_views(fake):
    problem = {"type": "about:blank", "title": "Not Found", "status": 404,
               "detail": "no such thing"}
    r = view("main", a=doc(fake, status=404, ctype="application/problem+json", body=problem),
             b=doc(fake))
    assert_problem(r, 404)
    assert r.json() == problem
    r = view("main", a=doc(fake), b=doc(fake, "status_500"))
    assert_partial(r, [("b", 500)])
    r = view("main", a=doc(fake, "slow"), b=doc(fake))
    fake.release_all()
    assert_problem(r, 504)


# ---- sizes ----------------------------------------------------------------------------------------

def big_doc(n):
    """A JSON object of exactly n bytes."""
    head, tail = b'{"filler":"', b'"}'
    return head + b64(n - len(head) - len(tail)).encode() + tail


def test_a_one_megabyte_part(fake):
    raw = big_doc(1 << 20)
    r = view("optional", a=doc(fake, raw=raw), b=doc(fake), c=doc(fake))
    body = assert_complete(r)
    assert body["a"] == json.loads(raw)
    assert len(r.content) > 1 << 20


@pytest.mark.parametrize("n,ok", [((512 << 10) - 1, True), (512 << 10, True),
                                  ((512 << 10) + 1, False), (1 << 20, False)])
def test_a_part_over_its_max_size_is_garbage(fake, n, ok):
    raw = big_doc(n)
    r = view("sizes", small=doc(fake, raw=raw), big=doc(fake, raw=raw))
    if ok:
        body = assert_complete(r)
        assert body["small"] == body["big"] == json.loads(raw)
    else:
        body = assert_partial(r, [("small", 502)])
        assert body["big"] == json.loads(raw)


def test_the_default_max_size_is_4m(fake):
    raw = big_doc((4 << 20) + 1)
    r = view("sizes", small=doc(fake), big=doc(fake, raw=raw))
    assert_partial(r, [("big", 502)])


# ---- clients that go away ------------------------------------------------------------------

def raw_request(path):
    """A connection that sent GET path: the socket (the caller closes it)."""
    s = socket.create_connection(("127.0.0.1", int(url("/").split(":")[2].strip("/"))))
    s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
    return s


def read_some(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_a_client_closing_mid_view(fake):
    offset = log_offset()
    # while a part is held (the client goes first, then the part answers)
    for _ in range(3):
        slow = doc(fake, "slow")
        quick = doc(fake)
        s = raw_request("/_tv/optional?a=%s&b=%s&c=%s" % (slow, quick, doc(fake)))
        fake.wait_asked(slow)
        fake.wait_asked(quick)
        s.close()
        fake.release(slow)
    # ... or times out after the client went
    slow = doc(fake, "slow")
    s = raw_request("/_tv/optional?a=%s&b=%s&c=%s" % (slow, doc(fake), doc(fake)))
    fake.wait_asked(slow)
    s.close()
    # one that waits on its second stage, one on a required part
    first = doc(fake, hold=True, body={"ids": ["x"]})
    s = raw_request("/_tv/refs?first=%s" % first)
    fake.wait_asked(first)
    s.close()
    fake.release(first)
    held = doc(fake, hold=True)
    s = raw_request("/_tv/required?a=%s&b=%s" % (held, doc(fake)))
    fake.wait_asked(held)
    s.close()
    fake.release(held)
    # one that goes away while reading a large answer
    s = raw_request("/_tv/optional?a=%s&b=%s&c=%s" % (doc(fake, raw=big_doc(2 << 20)),
                                                     doc(fake), doc(fake)))
    got = read_some(s, 1000)
    s.close()
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    # the slow one's timeout passed: the view answered nobody
    r = view("optional", a=doc(fake, "slow"), b=doc(fake), c=doc(fake))
    fake.release_all()
    assert_partial(r, [("a", 504)])
    # nginx is fine: the next views answer
    assert get("/healthz").status_code == 200
    for _ in range(3):
        assert_complete(view("optional", a=doc(fake), b=doc(fake), c=doc(fake)))
    problems = log_problems_since(offset)
    assert not problems, problems


# ---- identity, request id and conditional headers reach the parts ------------------------

def test_parts_get_the_views_identity_request_id_and_conditional_headers(fake, people):
    who = people["author"]
    spoof = {"X-Encore-User-Id": str(uuid.uuid4()), "X-Encore-User-Role": "admin",
             "X-Encore-User-Name": "root"}
    cond = {"If-None-Match": '"abc"', "If-Modified-Since": "Tue, 01 Dec 2026 00:00:00 GMT"}
    r = view("optional", headers=dict(who["h"], **spoof, **cond),
             a=doc(fake, echo=True), b=doc(fake, echo=True), c=doc(fake))
    body = assert_complete(r)
    for p in "ab":
        h = body[p]["headers"]
        assert h.get("x-encore-user-id") == who["id"], h
        assert h.get("x-encore-user-role") == "user", h
        assert h.get("x-encore-user-name") == who["username"], h
        assert h.get("x-request-id") == r.headers["X-Request-Id"], h
        assert h.get("if-none-match") == cond["If-None-Match"], h
        assert h.get("if-modified-since") == cond["If-Modified-Since"], h
        assert "content-length" not in h or h["content-length"] == "0", h
    # anonymous: the client's X-Encore-* never reach a part; the one the
    # edge sets itself (its Origin verdict, for auth) is the edge's
    r = view("optional", headers=dict(spoof, **{"X-Encore-Origin-Allowed": "1"}),
             a=doc(fake, echo=True), b=doc(fake), c=doc(fake))
    h = assert_complete(r)["a"]["headers"]
    assert not [k for k in h if k.startswith("x-encore-")
                and k != "x-encore-origin-allowed"], h
    assert h.get("x-encore-origin-allowed", "0") == "0", h
    # a client's X-Request-Id of its own is not what the parts get
    r = view("optional", headers={"X-Request-Id": "client-chosen"}, a=doc(fake, echo=True),
             b=doc(fake), c=doc(fake))
    assert assert_complete(r)["a"]["headers"]["x-request-id"] == r.headers["X-Request-Id"]


def test_parts_are_gets_without_a_body(fake):
    r = requests.get(url("/_tv/optional?a=%s&b=%s&c=%s"
                         % (doc(fake, echo=True), doc(fake), doc(fake))),
                     data=b'{"x": 1}', headers={"Content-Type": "application/json"})
    h = assert_complete(r)["a"]["headers"]
    assert h.get("content-length") in (None, "0") and "transfer-encoding" not in h, h


# ---- per-part cache: anonymous readers only --------------------------------------------------

def cached(fake, **kw):
    return "cache/" + fake.add(count=True, **kw)


def test_the_cache_serves_an_anonymous_part(fake):
    part = cached(fake)
    first = view("optional", a=part, b=doc(fake), c=doc(fake))
    second = view("optional", a=part, b=doc(fake), c=doc(fake))
    assert assert_complete(first)["a"] == {"hits": 1}
    assert assert_complete(second)["a"] == {"hits": 1}
    assert len(fake.requests(part)) == 1


def test_the_cache_never_serves_nor_keeps_an_authenticated_part(fake, people):
    who = people["author"]
    part = cached(fake)
    # an authenticated reader first: not kept
    assert assert_complete(view("optional", headers=who["h"], a=part, b=doc(fake),
                                c=doc(fake)))["a"] == {"hits": 1}
    assert assert_complete(view("optional", a=part, b=doc(fake), c=doc(fake)))["a"] == \
        {"hits": 2}
    # the anonymous answer is kept now, and served to anonymous readers only
    assert assert_complete(view("optional", a=part, b=doc(fake), c=doc(fake)))["a"] == \
        {"hits": 2}
    for h in (who["h"], {"Cookie": "encore_access=" + who["token"]}, people["other"]["h"]):
        before = len(fake.requests(part))
        got = assert_complete(view("optional", headers=h, a=part, b=doc(fake), c=doc(fake)))
        assert got["a"] == {"hits": before + 1}, (h, got)
        # and the identity reached the worker (not a cached answer)
        assert fake.requests(part)[-1]["headers"].get("x-encore-user-id"), h
    assert assert_complete(view("optional", a=part, b=doc(fake), c=doc(fake)))["a"] == \
        {"hits": 2}


def test_the_cache_keeps_no_failure(fake):
    part = "cache/" + fake.add(status=503, ctype="application/problem+json",
                               body={"type": "about:blank", "title": "Service Unavailable",
                                     "status": 503, "detail": "x"})
    for n in (1, 2):
        assert_partial(view("optional", a=part, b=doc(fake), c=doc(fake)), [("a", 503)])
        assert len(fake.requests(part)) == n


# ---- field references (the second stage) -----------------------------------------------------

FIRST = {"ids": ["a b", "c,d", "e&f=g", "h/i?j", "7"], "one": "x y+z%",
         "num": 42, "deep": {"n": 1.5}, "empty": [], "obj": {"k": "v"}, "nul": None}


def echoed(body, part):
    return body[part]["query"]


def test_references_become_url_encoded_query_text(fake):
    first = doc(fake, body=FIRST)
    r = view("refs", first=first)
    body = assert_partial(r, [("obj", 424), ("missing", 424), ("nul", 424)])
    assert body["first"] == FIRST
    assert echoed(body, "ids") == "ids=a%20b,c%2Cd,e%26f%3Dg,h%2Fi%3Fj,7"
    assert echoed(body, "few") == "ids=a%20b,c%2Cd"
    assert echoed(body, "one") == "v=x%20y%2Bz%25"
    assert echoed(body, "num") == "v=42&w=1.5"
    # an empty array: not asked for, the value is []
    assert body["empty"] == []
    assert "v=" not in [s["query"] for s in fake.seen["echo"]]
    assert list(body) == ["first", "ids", "few", "one", "num", "empty", "obj", "missing",
                          "nul", "errors"]


def test_references_pass_at_most_max_items(fake):
    ids = [str(uuid.UUID(int=i)) for i in range(25)]
    body = assert_partial(view("refs", first=doc(fake, body=dict(FIRST, ids=ids))),
                          [("obj", 424), ("missing", 424), ("nul", 424)])
    assert echoed(body, "ids") == "ids=" + ",".join(ids[:20])
    assert echoed(body, "few") == "ids=" + ",".join(ids[:2])


def test_references_to_a_failed_part_fail_with_424(fake):
    for fault in ("status_500", "not_json", "slow", "stopped"):
        r = view("refs", first=doc(fake, fault))
        fake.release_all()
        status = FAULTS[fault][1]
        assert_partial(r, [("first", status)] + [(p, 424) for p in (
            "ids", "few", "one", "num", "empty", "obj", "missing", "nul")])


def test_arrays_of_objects_are_no_reference(fake):
    r = view("refs", first=doc(fake, body=dict(FIRST, ids=[{"id": 1}], num=[1, [2]])))
    assert_partial(r, [("ids", 424), ("few", 424), ("num", 424), ("obj", 424),
                       ("missing", 424), ("nul", 424)])


# ---- where values go --------------------------------------------------------------------------

def test_pick_fields_deny_key_and_merge(fake):
    r = view("shape", a=doc(fake, body={"x": 1, "y": 2, "z": 3}),
             b=doc(fake, body=[{"id": 1, "secret": "s"}, {"id": 2, "secret": "t", "o": 0}]),
             c=doc(fake, body={"top": True, "also": [1]}),
             d=doc(fake, body={"items": [{"id": "i", "name": "n"}], "next_cursor": None}))
    body = assert_complete(r)
    assert body == {"group": {"first": {"x": 1, "y": 2},
                              "second": [{"id": 1}, {"id": 2, "o": 0}]},
                    "top": True, "also": [1], "d": [{"id": "i"}]}
    assert list(body) == ["group", "top", "also", "d"]
    # no member to pick: garbage
    r = view("shape", a=doc(fake), b=doc(fake), c=doc(fake, body={}), d=doc(fake, body={}))
    assert_view(r)
    assert r.json()["errors"] == [{"part": "d", "status": 502}]


# ---- ETag and HEAD on a partial view ----------------------------------------------------------

def test_a_partial_view_has_an_etag_and_answers_304(fake):
    parts = {"a": doc(fake), "b": doc(fake, "status_500"), "c": doc(fake)}
    r = view("optional", **parts)
    assert_partial(r, [("b", 500)])
    again = view("optional", headers={"If-None-Match": r.headers["ETag"]}, **parts)
    assert again.status_code == 304 and again.content == b""
    assert again.headers.get("ETag") == r.headers["ETag"]
    head = view("optional", method="HEAD", **parts)
    assert_view(head)
    assert head.headers["ETag"] == r.headers["ETag"]
    assert head.headers["X-Encore-Partial"] == "b"


# ---- a real worker stopped ------------------------------------------------------------------

def test_the_post_view_without_its_comments_worker(people):
    author = people["author"]
    p = new_post(author["h"], status="published")
    path = "/api/v1/views/post/%s" % p["id"]
    # the comments worker knows the post first (its replica is fed by events)
    wait_until(lambda: "errors" not in requests.get(url(path), headers=author["h"]).json(),
               timeout=60, what="the comments worker's replica to have the post")
    stack("stop-worker", "comments")
    try:
        for h in (author["h"], {}):
            body = assert_partial(requests.get(url(path), headers=h), [("comments", 502)])
            assert body["post"] == p and body["artists"] == []
    finally:
        stack("start-worker", "comments")
    wait_until(lambda: "errors" not in requests.get(url(path), headers=author["h"]).json(),
               timeout=60, what="the comments worker back")
