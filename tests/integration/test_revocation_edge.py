"""Revocation at the edge, the nginx side (issue 14; REVOKE-SPEC.md): the
jwt module's revocation zone, filled by POST /internal/revocations, refuses
a verified token (cache hit or miss) whose subject or session was revoked
after the token was issued.

These tests post to the endpoint themselves, as the edge agent would; the
agent's own tests (Kafka to the edge) are its own.  Every revocation here
is of a user made for the test: the zone keeps entries for 16 minutes, and
other tests' users must stay usable.
"""
import http.client
import json
import socket
import time
import uuid

import pytest
import requests

import jwt_forge as jf
from conftest import (EDGE, assert_problem, login, post_revocations,
                      register, url, wait_until)
from test_metrics import private_nginx  # noqa: F401 (a fixture)

ME = "/api/v1/auth/me"


def me(tok):
    return requests.get(url(ME), headers={"Authorization": "Bearer " + tok})


def fresh_user():
    user, pw = register()
    session = login(user["username"], pw)
    u = dict(session["user"])
    u["token"] = session["access_token"]
    u["iat"] = jf.decode_part(u["token"], 1)["iat"]
    return u


@pytest.fixture(scope="module")
def signer():
    kid = jf.published_kids()[0]
    return jf.real_key(kid)


def revocation(sub, not_before, cause="password_changed", sid=None):
    r = {"sub": sub, "not_before": not_before, "cause": cause}
    if sid:
        r["sid"] = sid
    return r


ADVICE = {"disabled": "the account is disabled",
          "deleted": "the account no longer exists"}


def assert_revoked(r, cause):
    body = assert_problem(r, 401)
    assert body["detail"] == ("the access token was revoked (%s); %s"
                              % (cause, ADVICE.get(cause, "sign in again or refresh"))), body
    www = r.headers["WWW-Authenticate"]
    assert www == 'Bearer error="invalid_token", error_description="token revoked"'


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in\n%s" % (name, text))


# ---- through the stack's edge ------------------------------------------------------------------

def test_subject_revocation_refuses_cached_and_new_tokens(signer):
    u = fresh_user()
    assert me(u["token"]).status_code == 200
    assert me(u["token"]).status_code == 200          # now a cache hit
    before = requests.get(url("/metrics")).text

    r = post_revocations([revocation(u["id"], u["iat"] + 1)])
    assert r.status_code == 204, r.text
    assert r.content == b""

    assert_revoked(me(u["token"]), "password_changed")    # the hit
    # a token of the same subject never seen before (a miss), issued
    # before the revocation: refused too
    old = jf.real_token(u, signer, iat=u["iat"] - 5)
    assert_revoked(me(old), "password_changed")
    # issued at not_before (a login in the revocation's second): passes
    new = jf.real_token(u, signer, iat=u["iat"] + 1)
    assert me(new).status_code == 200

    after = requests.get(url("/metrics")).text
    assert metric(after, "encore_jwt_revoked_total") \
        >= metric(before, "encore_jwt_revoked_total") + 2
    assert metric(after, "encore_revocation_entries") >= 1
    assert 'outcome="token_revoked"' in after


def test_session_revocation_refuses_only_that_session(signer):
    u = fresh_user()
    s1, s2 = str(uuid.uuid4()), str(uuid.uuid4())
    t1 = jf.real_token(u, signer, sid=s1)
    t2 = jf.real_token(u, signer, sid=s2)
    assert me(t1).status_code == 200 and me(t2).status_code == 200

    r = post_revocations([revocation(u["id"], int(time.time()) + 1,
                                     cause="logout", sid=s1)])
    assert r.status_code == 204, r.text

    assert_revoked(me(t1), "logout")
    assert me(t2).status_code == 200
    assert me(u["token"]).status_code == 200       # no sid: not that session


def test_not_before_at_or_before_iat_refuses_nothing(signer):
    u = fresh_user()
    for nb in (u["iat"], u["iat"] - 100, 0):
        r = post_revocations([revocation(u["id"], nb, cause="role_changed")])
        assert r.status_code == 204, r.text
        assert me(u["token"]).status_code == 200


def test_larger_not_before_wins_whatever_the_order(signer):
    u = fresh_user()
    r = post_revocations([revocation(u["id"], u["iat"] + 1, cause="disabled"),
                          revocation(u["id"], u["iat"] - 50, cause="logout")])
    assert r.status_code == 204
    assert_revoked(me(u["token"]), "disabled")
    # an older event replayed later changes nothing either
    post_revocations([revocation(u["id"], u["iat"] - 60, cause="logout")])
    assert_revoked(me(u["token"]), "disabled")


@pytest.mark.parametrize("cause", ["logout", "password_changed", "refresh_reuse",
                                   "disabled", "role_changed", "deleted"])
def test_every_cause_is_named(cause):
    u = fresh_user()
    assert post_revocations([revocation(u["id"], u["iat"] + 1, cause=cause)]
                            ).status_code == 204
    assert_revoked(me(u["token"]), cause)


def test_cookie_token_refused_too():
    u = fresh_user()
    assert post_revocations([revocation(u["id"], u["iat"] + 1)]).status_code == 204
    r = requests.get(url(ME), headers={"Cookie": "encore_access=" + u["token"]})
    assert_revoked(r, "password_changed")


BAD_BODIES = {
    "not-json": b"{",
    "array": b"[]",
    "no-revocations": {"replayed": True, "through": 1},
    "no-replayed": {"revocations": [], "through": 1},
    "no-through": {"revocations": [], "replayed": True},
    "replayed-string": {"revocations": [], "replayed": "yes", "through": 1},
    "through-real": {"revocations": [], "replayed": True, "through": 1.5},
    "bad-uuid": "sub=not-a-uuid",
    "bad-sid": "sid=123",
    "sid-null": "sid=null",
    "no-not-before": "not_before=missing",
    "not-before-string": "not_before=\"1\"",
    "not-before-real": "not_before=1.5",
    "unknown-cause": "cause=\"stolen\"",
    "no-cause": "cause=missing",
    "too-many": "1001",
    "not-before-year-10000": "not_before=253402300800",
    "not-before-year-9999": "not_before=253402300799",
    "not-before-an-hour-ahead": "not_before=ahead",
}


def _bad_body(kind, good):
    if isinstance(kind, bytes):
        return kind
    if isinstance(kind, dict):
        return json.dumps(kind).encode()
    entries = [dict(good)]
    if kind == "1001":
        entries = [dict(good) for _ in range(1001)]
    else:
        field, value = kind.split("=", 1)
        bad = dict(good)
        if value == "missing":
            del bad[field]
        elif value == "not-a-uuid":
            bad[field] = "not-a-uuid"
        elif value == "ahead":
            bad[field] = int(time.time()) + 3600
        else:
            bad[field] = json.loads(value)
        entries.append(bad)
    return json.dumps({"revocations": entries, "replayed": True,
                       "through": int(time.time() * 1000)}).encode()


@pytest.mark.parametrize("kind", list(BAD_BODIES), ids=list(BAD_BODIES))
def test_bad_body_is_400_and_applies_nothing(kind):
    u = fresh_user()
    good = revocation(u["id"], u["iat"] + 1)
    r = requests.post(EDGE + "/internal/revocations", data=_bad_body(BAD_BODIES[kind], good),
                      headers={"Content-Type": "application/json"})
    body = assert_problem(r, 400)
    assert body["detail"]
    # the zone's id on a refusal too: the agent must not take its absence
    # for a new zone and replay the refused entry forever
    assert r.headers["Encore-Revocation-Zone"] == \
        post_revocations().headers["Encore-Revocation-Zone"]
    # the good entry that came with the bad one was not applied
    assert me(u["token"]).status_code == 200


def test_not_before_up_to_60s_ahead_is_taken(signer):
    # a genuine not_before is the auth commit's second + 1: a clock a few
    # seconds apart must not lose it; 60 s ahead is the documented bound
    u = fresh_user()
    r = post_revocations([revocation(u["id"], int(time.time()) + 55,
                                     cause="logout", sid=str(uuid.uuid4()))])
    assert r.status_code == 204, r.text
    r = post_revocations([revocation(u["id"], int(time.time()) + 120,
                                     cause="logout", sid=str(uuid.uuid4()))])
    assert_problem(r, 400)


@pytest.mark.parametrize("claims", [
    {"sub": "alice"}, {"sub": 12345}, {"sub": "0123456789abcdef0123456789abcdef"},
    {"sid": ["11111111-2222-4333-8444-555555555555"]}, {"sid": 7},
    {"sid": "not-a-uuid"}, {"sid": {"id": "x"}}],
    ids=["sub-name", "sub-number", "sub-hex", "sid-array", "sid-number",
         "sid-not-uuid", "sid-object"])
def test_token_the_zone_cannot_key_is_401(signer, claims):
    # a zone is configured: a token whose sub or sid no revocation could
    # name would escape every revocation; auth never issues one
    u = fresh_user()
    r = me(jf.real_token(u, signer, **claims))
    body = assert_problem(r, 401)
    assert "is not a UUID" in body["detail"], body
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # a UUID sid and a UUID sub pass
    assert me(jf.real_token(u, signer, sid=str(uuid.uuid4()))).status_code == 200


def test_endpoint_methods_size_and_zone_id():
    assert requests.get(EDGE + "/internal/revocations").status_code == 405
    assert requests.put(EDGE + "/internal/revocations", data=b"{}").status_code == 405
    big = b'{"revocations":[],"replayed":true,"through":1,"pad":"' + b"x" * (1 << 20) + b'"}'
    r = requests.post(EDGE + "/internal/revocations", data=big)
    assert_problem(r, 413)
    # the zone's id, the same on every answer while the zone lives
    a = post_revocations().headers["Encore-Revocation-Zone"]
    b = post_revocations().headers["Encore-Revocation-Zone"]
    assert a == b and len(a) == 16


def test_other_internal_paths_reach_no_worker():
    for path in ("/internal/revocations/x", "/internal/verify", "/internal/"):
        r = requests.post(EDGE + path, json={})
        assert r.status_code in (404, 405), (path, r.status_code)
        assert "X-Encore-User-Id" not in r.text


def test_readyz_names_revocations_and_metrics_show_the_feed():
    r = post_revocations()
    assert r.status_code == 204
    body = requests.get(url("/readyz")).json()
    assert body["workers"]["revocations"] == {"ready": True, "status": 200}
    text = requests.get(url("/metrics")).text
    assert metric(text, "encore_revocation_feed_age_seconds") >= 0
    assert metric(text, "encore_revocation_evictions_total") >= 0
    for name in ("encore_jwt_revoked_total", "encore_revocation_evictions_total"):
        assert "# TYPE %s counter" % name in text
    for name in ("encore_revocation_entries", "encore_revocation_feed_age_seconds"):
        assert "# TYPE %s gauge" % name in text


# ---- a private nginx: readiness transitions, a tiny zone, a remote peer --------------------

FEED_CONF = """
    encore_metrics_zone           m:256k;
    encore_jwt_revocation_zone    r %(size)s;
    encore_jwt_revocation_stale   %(stale)s;
    server {
        listen  127.0.0.1:@PORT@;
        %(listen)s
        location = /readyz { encore_readyz; }
        location = /metrics { encore_metrics_route metrics; encore_metrics_expose; }
        location = /internal/revocations {
            client_max_body_size     1m;
            client_body_buffer_size  %(buffer)s;
            encore_jwt_revocations;
        }
        location / { return 204; }
    }
"""


def feed_nginx(private_nginx, size="64k", stale="1s", also=None, buffer="1m"):
    listen = "listen  %s:@PORT@;" % also if also else ""
    return private_nginx(FEED_CONF % {"size": size, "stale": stale,
                                      "listen": listen, "buffer": buffer})


def post_zone_twice(base, zone):
    """A replayed heartbeat naming the zone in two headers."""
    host, port = base.split("//")[1].rstrip("/").split(":")
    body = json.dumps({"revocations": [], "replayed": True,
                       "through": int(time.time() * 1000)}).encode()
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        c.putrequest("POST", "/internal/revocations")
        c.putheader("Content-Type", "application/json")
        c.putheader("Content-Length", str(len(body)))
        c.putheader("Encore-Revocation-Zone", zone)
        c.putheader("Encore-Revocation-Zone", zone)
        c.endheaders(body)
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("Encore-Revocation-Zone")
    finally:
        c.close()


def test_readyz_until_replayed_and_when_stale(private_nginx):
    n = feed_nginx(private_nginx)
    body = assert_problem(requests.get(n.url("/readyz")), 503)
    assert body["not_ready"] == ["revocations"]
    assert "revocations" in body["detail"]
    text = requests.get(n.url("/metrics")).text
    assert "encore_revocation_feed_age_seconds +Inf" in text

    # replaying: fresh, but not replayed yet
    base = n.url("")
    first = post_revocations(replayed=False, base=base)
    assert first.status_code == 204
    zone = first.headers["Encore-Revocation-Zone"]
    assert_problem(requests.get(n.url("/readyz")), 503)

    # "replayed" from an agent that replayed into another zone (this nginx
    # restarted since), or that names none, or names it twice: still
    # behind, though the entries are taken
    other = "%016x" % (int(zone, 16) ^ 1)
    for sent in (False, other, zone[:-1], zone + "0", "x" * 16):
        r = post_revocations(replayed=True, base=base, zone=sent)
        assert r.status_code == 204, (sent, r.text)
        assert r.headers["Encore-Revocation-Zone"] == zone
        body = assert_problem(requests.get(n.url("/readyz")), 503)
        assert body["not_ready"] == ["revocations"], (sent, body)
    status, answered = post_zone_twice(base, zone)
    assert status == 204 and answered == zone
    assert_problem(requests.get(n.url("/readyz")), 503)
    assert post_revocations([revocation(str(uuid.uuid4()), int(time.time()))],
                            base=base, zone=other).status_code == 204
    assert metric(requests.get(n.url("/metrics")).text, "encore_revocation_entries") == 1
    assert_problem(requests.get(n.url("/readyz")), 503)

    # replayed into this zone: ready
    assert post_revocations(replayed=True, base=base, zone=zone).status_code == 204
    r = requests.get(n.url("/readyz"))
    assert r.status_code == 200, r.text
    assert r.json()["workers"] == {"revocations": {"ready": True, "status": 200}}

    # no post for longer than encore_jwt_revocation_stale: behind again
    wait_until(lambda: requests.get(n.url("/readyz")).status_code == 503,
               timeout=15, what="/readyz 503 once the feed is stale")
    body = requests.get(n.url("/readyz")).json()
    assert body["not_ready"] == ["revocations"]

    # and back with the next post; the feed age follows "through"
    assert post_revocations(replayed=True, base=base,
                            through=int(time.time() * 1000) - 90000
                            ).status_code == 204
    assert requests.get(n.url("/readyz")).status_code == 200
    age = metric(requests.get(n.url("/metrics")).text,
                 "encore_revocation_feed_age_seconds")
    assert 90 <= age < 3600
    assert n.problems() == []


def test_tiny_zone_evicts_and_counts(private_nginx):
    n = feed_nginx(private_nginx, size="32k")
    now = int(time.time())
    entries = [revocation(str(uuid.uuid4()), now - 500 + i // 2)
               for i in range(1000)]
    assert post_revocations(entries, base=n.url("")).status_code == 204
    text = requests.get(n.url("/metrics")).text
    held = metric(text, "encore_revocation_entries")
    evicted = metric(text, "encore_revocation_evictions_total")
    assert 0 < held < 1000
    assert held + evicted == 1000
    # a second batch: each new entry evicts one (or is itself dropped)
    more = [revocation(str(uuid.uuid4()), now + 50) for _ in range(10)]
    assert post_revocations(more, base=n.url("")).status_code == 204
    text = requests.get(n.url("/metrics")).text
    assert metric(text, "encore_revocation_entries") == held
    assert metric(text, "encore_revocation_evictions_total") == evicted + 10
    assert n.problems() == []


def test_body_in_a_temporary_file_is_read(private_nginx):
    # a body over client_body_buffer_size goes to a file: still parsed
    n = feed_nginx(private_nginx, buffer="1k")
    now = int(time.time())
    entries = [revocation(str(uuid.uuid4()), now) for _ in range(200)]
    assert post_revocations(entries, base=n.url("")).status_code == 204
    assert metric(requests.get(n.url("/metrics")).text,
                  "encore_revocation_entries") == 200
    assert n.problems() == []


def _non_loopback_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))       # no packet is sent
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def test_handler_refuses_a_non_loopback_peer(private_nginx):
    """The location's allow/deny is the first line; without it, the
    handler refuses any peer but loopback itself."""
    addr = _non_loopback_address()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    n = feed_nginx(private_nginx, also=addr)
    r = requests.post("http://%s:%d/internal/revocations" % (addr, n.port),
                      json={"revocations": [], "replayed": True, "through": 1})
    body = assert_problem(r, 403)
    assert "loopback" in body["detail"]
    assert_problem(requests.get("http://%s:%d/readyz" % (addr, n.port)), 503)
