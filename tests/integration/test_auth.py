"""Auth flows through the edge (CONTRACT.md, Auth), and the identity routes
straight against the worker until the jwt module opens them at the edge."""
import base64
import hashlib
import json
import os
import select
import socket
import subprocess
import threading
import uuid

import pytest
import requests

from conftest import (PG_PORT, RUN_DIR, assert_problem, auth_cli, login, register,
                      stack, unique, url, worker_request)


ADMIN_PASSWORD = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")


def b64url_json(seg):
    seg += "=" * (-len(seg) % 4)
    return json.loads(base64.urlsafe_b64decode(seg))


def identity(user, role="user"):
    return {"X-Encore-User-Id": user["id"], "X-Encore-User-Role": role,
            "X-Encore-User-Name": user["username"]}


# ---- register -----------------------------------------------------------------

def test_register_creates_user_with_location():
    name = unique()
    r = requests.post(url("/api/v1/auth/register"),
                      json={"username": name, "email": name + "@Example.test",
                            "password": "long enough password"})
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["username"] == name
    assert user["role"] == "user"
    assert uuid.UUID(user["id"])
    assert "password" not in json.dumps(user)
    assert r.headers["Location"].endswith(user["id"])
    assert r.headers["X-Request-Id"]
    for field in ("id", "username", "email", "role", "bio", "created_at"):
        assert field in user


def test_register_duplicate_username_and_email_case_insensitive():
    user, _ = register()
    r = requests.post(url("/api/v1/auth/register"),
                      json={"username": user["username"], "email": unique() + "@x.test",
                            "password": "long enough password"})
    assert_problem(r, 409)
    r = requests.post(url("/api/v1/auth/register"),
                      json={"username": unique(), "email": user["email"].upper(),
                            "password": "long enough password"})
    assert_problem(r, 409)


def test_register_validation_errors_are_422_with_fields():
    cases = [
        ({"username": "ab", "email": "a@b.test", "password": "long enough"}, "username"),
        ({"username": "Upper_Case", "email": "a@b.test", "password": "long enough"}, "username"),
        ({"username": "x" * 33, "email": "a@b.test", "password": "long enough"}, "username"),
        ({"username": unique(), "email": "not-an-email", "password": "long enough"}, "email"),
        ({"username": unique(), "email": "a@b.test", "password": "short"}, "password"),
        ({"username": unique(), "email": "a@b.test", "password": "p" * 129}, "password"),
        ({"username": unique(), "email": "a@b.test"}, "password"),
        ({"username": 42, "email": "a@b.test", "password": "long enough"}, "username"),
    ]
    for body, field in cases:
        r = requests.post(url("/api/v1/auth/register"), json=body)
        problem = assert_problem(r, 422)
        assert any(e["field"] == field for e in problem["errors"]), (body, problem)


def test_register_password_counts_unicode_code_points():
    # 8 code points but 24 bytes: valid; 129 code points of 2 bytes: too long
    name = unique()
    r = requests.post(url("/api/v1/auth/register"),
                      json={"username": name, "email": name + "@x.test", "password": "ééééééé€"})
    assert r.status_code == 201, r.text
    r = requests.post(url("/api/v1/auth/register"),
                      json={"username": unique(), "email": unique() + "@x.test", "password": "é" * 129})
    assert_problem(r, 422)


def test_register_bad_inputs_change_nothing():
    name = unique()
    ok = {"username": name, "email": name + "@x.test", "password": "long enough password"}
    # malformed JSON
    r = requests.post(url("/api/v1/auth/register"), data=b'{"username": "x",',
                      headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    # wrong content type
    r = requests.post(url("/api/v1/auth/register"), data=json.dumps(ok),
                      headers={"Content-Type": "text/plain"})
    assert_problem(r, 415)
    # not an object
    r = requests.post(url("/api/v1/auth/register"), json=[ok])
    assert r.status_code in (400, 422), r.text
    # duplicate members
    r = requests.post(url("/api/v1/auth/register"),
                      data=('{"username":"%s","username":"other","email":"%s@x.test",'
                            '"password":"long enough password"}' % (name, name)).encode(),
                      headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    # invalid UTF-8
    r = requests.post(url("/api/v1/auth/register"),
                      data=b'{"username":"\xff\xfe","email":"a@b.test","password":"long enough"}',
                      headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    # oversized body: the edge answers 413 before the worker sees it
    r = requests.post(url("/api/v1/auth/register"),
                      json={"username": name, "email": name + "@x.test", "password": "x" * 200000})
    assert_problem(r, 413)
    # none of it created the user
    r = requests.post(url("/api/v1/auth/register"), json=ok)
    assert r.status_code == 201, r.text


def test_register_wrong_method_is_405_with_allow():
    r = requests.get(url("/api/v1/auth/register"))
    assert_problem(r, 405)
    assert "POST" in r.headers["Allow"]


# ---- login / tokens -----------------------------------------------------------

def test_login_by_username_and_email_returns_es256_token():
    user, pw = register()
    for name in (user["username"], user["email"]):
        body = login(name, pw)
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 900
        assert body["refresh_token"]
        assert body["user"]["id"] == user["id"]
        head, claims, sig = body["access_token"].split(".")
        header = b64url_json(head)
        assert header["alg"] == "ES256" and header["kid"]
        payload = b64url_json(claims)
        assert payload["iss"] == "encore"
        assert payload["aud"] == "encore-api"
        assert payload["sub"] == user["id"]
        assert payload["role"] == "user"
        assert payload["name"] == user["username"]
        assert payload["exp"] - payload["iat"] == 900
        assert payload["jti"]
        assert len(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))) == 64


def test_login_sets_cookies():
    user, pw = register()
    r = requests.post(url("/api/v1/auth/login"), json={"login": user["username"], "password": pw})
    assert r.status_code == 200
    cookies = r.raw.headers.getlist("Set-Cookie")
    access = [c for c in cookies if c.startswith("encore_access=")]
    refresh = [c for c in cookies if c.startswith("encore_refresh=")]
    assert access and refresh, cookies
    a = access[0].lower()
    assert "path=/;" in a + ";" and "httponly" in a and "samesite=strict" in a and "max-age=900" in a
    f = refresh[0].lower()
    assert "path=/api/v1/auth" in f and "httponly" in f and "samesite=strict" in f


def test_login_unknown_user_and_wrong_password_answer_the_same():
    user, _ = register()
    a = requests.post(url("/api/v1/auth/login"), json={"login": user["username"], "password": "wrong password"})
    b = requests.post(url("/api/v1/auth/login"), json={"login": unique(), "password": "wrong password"})
    pa, pb = assert_problem(a, 401), assert_problem(b, 401)
    assert pa["detail"] == pb["detail"] and pa["title"] == pb["title"]


def test_jwks_publishes_the_signing_key():
    user, pw = register()
    token = login(user["username"], pw)["access_token"]
    kid = b64url_json(token.split(".")[0])["kid"]
    r = requests.get(url("/.well-known/jwks.json"))
    assert r.status_code == 200
    keys = r.json()["keys"]
    key = [k for k in keys if k["kid"] == kid][0]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["x"] and key["y"]
    assert "d" not in key


def test_signature_verifies_with_the_published_key():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    user, pw = register()
    token = login(user["username"], pw)["access_token"]
    head, claims, sig = token.split(".")
    kid = b64url_json(head)["kid"]
    jwk = [k for k in requests.get(url("/.well-known/jwks.json")).json()["keys"] if k["kid"] == kid][0]
    dec = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(dec(jwk["x"]), "big"),
                                        int.from_bytes(dec(jwk["y"]), "big"),
                                        ec.SECP256R1()).public_key()
    raw = dec(sig)
    der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    pub.verify(der, (head + "." + claims).encode(), ec.ECDSA(hashes.SHA256()))


# ---- refresh rotation and reuse detection ------------------------------------------

def test_refresh_rotates_and_reuse_revokes_the_family():
    user, pw = register()
    first = login(user["username"], pw)["refresh_token"]
    r = requests.post(url("/api/v1/auth/refresh"), json={"refresh_token": first})
    assert r.status_code == 200, r.text
    second = r.json()["refresh_token"]
    assert second != first and r.json()["access_token"]
    # the old one stops working, and presenting it revokes the family
    assert_problem(requests.post(url("/api/v1/auth/refresh"), json={"refresh_token": first}), 401)
    assert_problem(requests.post(url("/api/v1/auth/refresh"), json={"refresh_token": second}), 401)


def cookie_session():
    """A session logged in by cookie, as the web UI is."""
    user, pw = register()
    s = requests.Session()
    r = s.post(url("/api/v1/auth/login"), json={"login": user["username"], "password": pw})
    assert r.status_code == 200
    assert s.cookies.get("encore_refresh")
    return s


# the origin the edge serves: scheme, host and port as the client addressed it
ORIGIN = url("")


def test_refresh_takes_the_cookie():
    s = cookie_session()
    r = s.post(url("/api/v1/auth/refresh"), json={}, headers={"Origin": ORIGIN})
    assert r.status_code == 200, r.text
    assert "encore_refresh=" in r.headers.get("Set-Cookie", "")


# ---- CSRF: the refresh cookie on unsafe methods needs our Origin ---------------------
# The contract: "Unsafe methods authenticated by cookie need an Origin
# matching the server". encore_refresh is SameSite=Strict, but a same-site
# attacker (a sibling subdomain) or an older browser still sends it; without
# this check a cross-site form could rotate or revoke the victim's session.

def test_cookie_refresh_without_origin_is_403():
    s = cookie_session()
    body = assert_problem(s.post(url("/api/v1/auth/refresh"), json={}), 403)
    assert "Origin" in body["detail"]
    # nothing was rotated: the cookie still works from our origin
    r = s.post(url("/api/v1/auth/refresh"), json={}, headers={"Origin": ORIGIN})
    assert r.status_code == 200, r.text


def test_cookie_refresh_from_another_origin_is_403():
    s = cookie_session()
    port = ORIGIN.rsplit(":", 1)[1]
    for origin in ("http://evil.example", "null", "https://127.0.0.1:" + port,
                   "http://127.0.0.1:1", "http://127.0.0.1", ORIGIN + ".evil.example",
                   ORIGIN + "/", "http://localhost:1", ""):
        r = s.post(url("/api/v1/auth/refresh"), json={}, headers={"Origin": origin})
        assert_problem(r, 403)
        assert "Set-Cookie" not in r.headers, origin
    # the scheme and host compare case-insensitively, as browsers send them
    r = s.post(url("/api/v1/auth/refresh"), json={},
               headers={"Origin": ORIGIN.upper().replace("HTTP://", "http://")})
    assert r.status_code == 200, r.text
    # the edge's other origin (its server_name) is auth's too: one list
    r = s.post(url("/api/v1/auth/refresh"), json={},
               headers={"Origin": "http://localhost:" + port})
    assert r.status_code == 200, r.text


def refresh_cookie(s):
    return "encore_refresh=" + s.cookies.get("encore_refresh", path="/api/v1/auth")


@pytest.mark.parametrize("path", ["/api/v1/auth/refresh", "/api/v1/auth/logout"])
def test_attack_cookie_with_a_matching_forged_host_is_403(path):
    """Host: evil.example with Origin: http://evil.example: the Origin is
    the request's own Host, but not an origin of the edge (issue 14)."""
    s = cookie_session()
    cookie = refresh_cookie(s)
    port = ORIGIN.rsplit(":", 1)[1]
    for host, origin in (("evil.example", "http://evil.example"),
                         ("evil.example:" + port, "http://evil.example:" + port),
                         ("127.0.0.1:" + port, "http://evil.example")):
        r = requests.post(url(path), json={},
                          headers={"Cookie": cookie, "Host": host, "Origin": origin})
        body = assert_problem(r, 403)
        assert "Origin" in body["detail"], (host, origin)
        assert "Set-Cookie" not in r.headers, (host, origin)
    # the session survived every one: it still refreshes from our origin
    r = requests.post(url("/api/v1/auth/refresh"), json={},
                      headers={"Cookie": cookie, "Origin": ORIGIN})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/api/v1/auth/refresh", "/api/v1/auth/logout"])
def test_cookie_with_our_origin_passes_whatever_the_host(path):
    s = cookie_session()
    r = requests.post(url(path), json={},
                      headers={"Cookie": refresh_cookie(s), "Host": "evil.example",
                               "Origin": ORIGIN})
    assert r.status_code in (200, 204), r.text


def raw_post(path, header_lines):
    """POST path with a JSON {} and these header lines as they are; the
    whole answer."""
    raw = "\r\n".join(["POST %s HTTP/1.1" % path] + header_lines
                       + ["Content-Type: application/json", "Content-Length: 2",
                          "Connection: close", "", "{}"])
    host, port = ORIGIN.split("//")[1].split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as c:
        c.sendall(raw.encode())
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return answer
            answer += chunk


@pytest.mark.parametrize("path", ["/api/v1/auth/refresh", "/api/v1/auth/logout"])
def test_attack_client_sent_origin_verdict_is_ignored(path):
    """X-Encore-Origin-Allowed is the edge's verdict (proxy.conf): a client's
    copy never reaches the worker, in any spelling or number."""
    s = cookie_session()
    cookie = refresh_cookie(s)
    for extra in ({"X-Encore-Origin-Allowed": "1"},
                  {"x-encore-origin-allowed": "1", "Host": "evil.example"}):
        for origin in (None, "http://evil.example"):
            hdrs = dict(extra, Cookie=cookie)
            if origin:
                hdrs["Origin"] = origin
            r = requests.post(url(path), json={}, headers=hdrs)
            assert_problem(r, 403)
            assert "Set-Cookie" not in r.headers
    # the header twice, with a forged Host and its Origin
    answer = raw_post(path, ["Host: evil.example", "Origin: http://evil.example",
                             "X-Encore-Origin-Allowed: 1", "X-Encore-Origin-Allowed: 1",
                             "Cookie: " + cookie])
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    # our origin twice is no one origin either (the edge's rule)
    answer = raw_post(path, ["Host: 127.0.0.1", "Origin: " + ORIGIN, "Origin: " + ORIGIN,
                             "Cookie: " + cookie])
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    # still alive
    r = requests.post(url("/api/v1/auth/refresh"), json={},
                      headers={"Cookie": cookie, "Origin": ORIGIN})
    assert r.status_code == 200, r.text


def test_body_refresh_token_needs_no_origin():
    user, pw = register()
    tokens = login(user["username"], pw)
    for headers in ({}, {"Origin": "http://evil.example"}):
        r = requests.post(url("/api/v1/auth/refresh"),
                          json={"refresh_token": tokens["refresh_token"]}, headers=headers)
        assert r.status_code == 200, r.text
        tokens = r.json()


def test_cookie_logout_needs_our_origin():
    s = cookie_session()
    for headers in ({}, {"Origin": "http://evil.example"}):
        r = s.post(url("/api/v1/auth/logout"), json={}, headers=headers)
        assert_problem(r, 403)
        assert "Set-Cookie" not in r.headers
    # the session survived both
    refresh = s.cookies.get("encore_refresh", path="/api/v1/auth")
    r = s.post(url("/api/v1/auth/logout"), json={}, headers={"Origin": ORIGIN})
    assert r.status_code == 204, r.text
    assert_problem(requests.post(url("/api/v1/auth/refresh"),
                                 json={"refresh_token": refresh}), 401)


def test_logout_without_any_token_needs_no_origin():
    # nothing to revoke, nothing forged: still 204, cookies cleared
    assert requests.post(url("/api/v1/auth/logout"), json={}).status_code == 204


def test_logout_revokes_and_clears_cookies():
    user, pw = register()
    tokens = login(user["username"], pw)
    r = requests.post(url("/api/v1/auth/logout"), json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    cookies = r.raw.headers.getlist("Set-Cookie")
    for name in ("encore_access=", "encore_refresh="):
        c = [c for c in cookies if c.startswith(name)]
        assert c and "max-age=0" in c[0].lower(), cookies
    assert_problem(requests.post(url("/api/v1/auth/refresh"),
                                 json={"refresh_token": tokens["refresh_token"]}), 401)


def test_garbage_refresh_token_is_401():
    for tok in ("", "x", "A" * 43, "../../etc/passwd", "é" * 50):
        assert_problem(requests.post(url("/api/v1/auth/refresh"), json={"refresh_token": tok}), 401)


# ---- profiles and identity routes (worker direct until the jwt module) ---------------

def test_public_profile_hides_email():
    user, _ = register()
    r = requests.get(url("/api/v1/users/" + user["id"]))
    assert r.status_code == 200, r.text
    prof = r.json()
    assert prof["username"] == user["username"] and "email" not in prof
    assert_problem(requests.get(url("/api/v1/users/" + str(uuid.uuid4()))), 404)


def test_identity_routes_not_open_at_the_edge_without_jwt():
    # a client cannot claim an identity by sending the edge's headers: the
    # jwt module drops them and the route's policy (user) wants a token
    user, _ = register()
    r = requests.get(url("/api/v1/auth/me"), headers=identity(user, "admin"))
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_me_needs_identity():
    r = worker_request("auth", "GET", "/api/v1/auth/me")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    user, _ = register()
    r = worker_request("auth", "GET", "/api/v1/auth/me", headers=identity(user))
    assert r.status_code == 200
    assert r.json()["email"] == user["email"]


def test_patch_me_password_change_revokes_refresh_tokens():
    user, pw = register()
    tokens = login(user["username"], pw)
    r = worker_request("auth", "PATCH", "/api/v1/users/me", headers=identity(user),
                       body={"password": "a brand new password", "current_password": "wrong"})
    assert r.status_code == 422
    r = worker_request("auth", "PATCH", "/api/v1/users/me", headers=identity(user),
                       body={"password": "a brand new password", "current_password": pw,
                             "bio": "jazz and noise"})
    assert r.status_code == 200, r.content
    assert r.json()["bio"] == "jazz and noise"
    assert_problem(requests.post(url("/api/v1/auth/refresh"),
                                 json={"refresh_token": tokens["refresh_token"]}), 401)
    login(user["username"], "a brand new password")


def real_admin():
    """The identity headers of the admin account that start created."""
    return identity(login("admin", ADMIN_PASSWORD)["user"], "admin")


def test_admin_routes_need_admin_role():
    user, _ = register()
    r = worker_request("auth", "GET", "/api/v1/users", headers=identity(user))
    assert r.status_code == 403
    r = worker_request("auth", "GET", "/api/v1/users?q=" + user["username"][:6],
                       headers=real_admin())
    assert r.status_code == 200
    body = r.json()
    assert "items" in body and "next_cursor" in body


def test_admin_role_is_checked_in_the_database_not_only_the_token():
    """Review finding: a demoted or disabled admin kept admin rights for the
    life of the access token (15 min), enough to re-promote themselves and
    lock the other admin out.  A role header (from a token) that the
    database no longer backs is refused."""
    user, _ = register()
    for method, path, body in (("GET", "/api/v1/users", None),
                               ("PATCH", "/api/v1/users/" + user["id"],
                                {"role": "admin"})):
        r = worker_request("auth", method, path, headers=identity(user, "admin"),
                           body=body)
        assert r.status_code == 403, (method, r.content)
    r = worker_request("auth", "GET", "/api/v1/users/" + user["id"])
    assert r.json()["role"] == "user"


def test_demoted_admin_cannot_undo_it():
    admin = real_admin()
    user, pw = register()
    r = worker_request("auth", "PATCH", "/api/v1/users/" + user["id"], headers=admin,
                       body={"role": "admin"})
    assert r.status_code == 200, r.content
    second = identity(user, "admin")       # as the token issued now would say
    r = worker_request("auth", "PATCH", "/api/v1/users/" + user["id"], headers=admin,
                       body={"role": "user", "disabled": True})
    assert r.status_code == 200, r.content
    r = worker_request("auth", "PATCH", "/api/v1/users/" + user["id"], headers=second,
                       body={"role": "admin", "disabled": False})
    assert r.status_code == 403, r.content
    r = worker_request("auth", "PATCH", "/api/v1/users/" + admin["X-Encore-User-Id"],
                       headers=second, body={"disabled": True})
    assert r.status_code == 403, r.content
    login("admin", ADMIN_PASSWORD)


def test_admin_cannot_change_their_own_rights():
    admin = real_admin()
    for body in ({"role": "user"}, {"disabled": True}, {"role": "admin"}):
        r = worker_request("auth", "PATCH", "/api/v1/users/" + admin["X-Encore-User-Id"],
                           headers=admin, body=body)
        assert r.status_code == 409, (body, r.content)
    assert login("admin", ADMIN_PASSWORD)["user"]["role"] == "admin"


def test_disabled_account_token_stops_working_at_the_auth_worker():
    user, pw = register()
    r = worker_request("auth", "PATCH", "/api/v1/users/" + user["id"], headers=real_admin(),
                       body={"disabled": True})
    assert r.status_code == 200, r.content
    for method, path, body in (("GET", "/api/v1/auth/me", None),
                               ("PATCH", "/api/v1/users/me", {"bio": "still here"}),
                               ("DELETE", "/api/v1/users/me", {"password": pw})):
        r = worker_request("auth", method, path, headers=identity(user), body=body)
        assert r.status_code == 401, (method, path, r.content)


def test_admin_disables_a_user():
    user, pw = register()
    tokens = login(user["username"], pw)
    r = worker_request("auth", "PATCH", "/api/v1/users/" + user["id"],
                       headers=real_admin(), body={"disabled": True})
    assert r.status_code == 200, r.content
    r = requests.post(url("/api/v1/auth/login"), json={"login": user["username"], "password": pw})
    assert_problem(r, 403)
    assert_problem(requests.post(url("/api/v1/auth/refresh"),
                                 json={"refresh_token": tokens["refresh_token"]}), 401)


def test_admin_changes_role():
    user, pw = register()
    admin = real_admin()
    r = worker_request("auth", "PATCH", "/api/v1/users/" + user["id"],
                       headers=admin, body={"role": "moderator"})
    assert r.status_code == 200, r.content
    assert r.json()["role"] == "moderator"
    token = login(user["username"], pw)["access_token"]
    assert b64url_json(token.split(".")[1])["role"] == "moderator"
    r = worker_request("auth", "PATCH", "/api/v1/users/" + user["id"],
                       headers=admin, body={"role": "emperor"})
    assert r.status_code == 422


def test_delete_me_removes_the_account():
    user, pw = register()
    r = worker_request("auth", "DELETE", "/api/v1/users/me", headers=identity(user),
                       body={"password": "wrong"})
    assert r.status_code in (401, 403, 422)
    r = worker_request("auth", "DELETE", "/api/v1/users/me", headers=identity(user),
                       body={"password": pw})
    assert r.status_code == 204
    assert_problem(requests.get(url("/api/v1/users/" + user["id"])), 404)
    r = requests.post(url("/api/v1/auth/login"), json={"login": user["username"], "password": pw})
    assert_problem(r, 401)


def test_admin_account_exists():
    body = login("admin", ADMIN_PASSWORD)
    assert body["user"]["role"] == "admin"


# ---- review findings: concurrency and the bootstrap admin ---------------------------------

def test_logout_waits_for_a_rotation_in_progress():
    """Review finding: a revocation (logout, password change, reuse) did not
    see the child token of a rotation that had not committed yet, so the
    token minted by that rotation stayed valid.  Every token-changing
    transaction now locks the user's row first: the logout waits for the
    rotation, then revokes what it minted."""
    user, pw = register()
    t1 = login(user["username"], pw)["refresh_token"]
    child = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    h1 = hashlib.sha256(t1.encode()).hexdigest()
    h2 = hashlib.sha256(child.encode()).hexdigest()

    # a rotation of t1 in progress, as the worker runs it: the user first
    with _held(user, "SELECT 'locked' FROM users WHERE id = '%s'"
                     " FOR NO KEY UPDATE" % user["id"]) as session:
        logout = _in_thread(lambda: requests.post(
            url("/api/v1/auth/logout"), json={"refresh_token": t1}, timeout=30))
        assert logout.is_alive(), "the logout did not wait for the rotation"
        session.finish(
            "UPDATE refresh_tokens SET used_at = now()"
            " WHERE token_hash = decode('%s', 'hex');\n"
            "INSERT INTO refresh_tokens (user_id, family_id, parent_id, token_hash,"
            " expires_at) SELECT user_id, family_id, id, decode('%s', 'hex'),"
            " now() + interval '1 hour' FROM refresh_tokens"
            " WHERE token_hash = decode('%s', 'hex')" % (h1, h2, h1))
    assert logout.result().status_code == 204

    # the token the rotation minted went with the rest
    assert_problem(requests.post(url("/api/v1/auth/refresh"),
                                 json={"refresh_token": child}), 401)


def test_rotation_waits_for_a_revocation_in_progress():
    """The other side of the same finding: a refresh that comes while a
    password change (which revokes every token of the user) is being
    committed must wait for it, then fail, rather than mint a token the
    revocation does not see."""
    user, pw = register()
    t1 = login(user["username"], pw)["refresh_token"]

    # a password change in progress: it holds the user's row
    with _held(user, "UPDATE users SET updated_at = now() WHERE id = '%s'"
                     " RETURNING 'locked'" % user["id"]) as session:
        refresh = _in_thread(lambda: requests.post(
            url("/api/v1/auth/refresh"), json={"refresh_token": t1}, timeout=30))
        assert refresh.is_alive(), "the refresh did not wait for the revocation"
        session.finish("UPDATE refresh_tokens SET revoked_at = now()"
                       " WHERE user_id = '%s'" % user["id"])
    assert_problem(refresh.result(), 401)


class _held:
    """A psql session as the auth worker's role holding the user's row (the
    first statement must print 'locked'), the way a concurrent worker
    transaction would; finish() runs more SQL and commits."""

    def __init__(self, user, lock_sql):
        password = (RUN_DIR / "secrets" / "pg-auth.password").read_text().strip()
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-tA", "-h", "127.0.0.1", "-p", PG_PORT,
             "-U", "encore_auth", "-d", "encore", "-v", "ON_ERROR_STOP=1"],
            env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lock_sql = lock_sql

    def __enter__(self):
        self.proc.stdin.write("BEGIN;\n%s;\n" % self.lock_sql)
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 10.0)
        assert ready, "psql did not answer"
        line = self.proc.stdout.readline().strip()
        assert line == "locked", line
        return self

    def finish(self, sql):
        self.proc.stdin.write("%s;\nCOMMIT;\n" % sql)
        self.proc.stdin.close()
        assert self.proc.wait(10) == 0, self.proc.stdout.read()

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class _in_thread(threading.Thread):
    """Runs call; is_alive() 1.5 s later says whether it is waiting."""

    def __init__(self, call):
        super().__init__(daemon=True)
        self.call, self.value = call, None
        self.start()
        self.join(1.5)

    def run(self):
        self.value = self.call()

    def result(self):
        self.join(30)
        return self.value


def test_start_leaves_a_changed_admin_password_alone():
    """Review finding: every `make start` reset the admin's password to the
    public default.  bootstrap-admin now only creates a missing account;
    --reset is the explicit way back."""
    admin = real_admin()
    changed = "the admin changed it"
    r = worker_request("auth", "PATCH", "/api/v1/users/me", headers=admin,
                       body={"password": changed, "current_password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.content
    try:
        out = auth_cli("bootstrap-admin")
        assert "left unchanged" in out.stdout, out.stdout
        login("admin", changed)
        r = requests.post(url("/api/v1/auth/login"),
                          json={"login": "admin", "password": ADMIN_PASSWORD})
        assert_problem(r, 401)
    finally:
        out = auth_cli("bootstrap-admin", "--reset", check=False)
        assert out.returncode == 0, out.stderr
    login("admin", ADMIN_PASSWORD)


def test_stack_reset_admin_restores_the_password_of_the_env():
    """`auto/stack reset-admin`, as an operator runs it with the stack's
    environment, after the admin changed the password through the API: the
    password of ENCORE_ADMIN_PASSWORD (or the default) works again, the
    changed one does not, and the sessions of before have ended."""
    session = login("admin", ADMIN_PASSWORD)
    changed = "changed through the api %s" % uuid.uuid4().hex[:8]
    r = requests.patch(url("/api/v1/users/me"),
                       json={"password": changed, "current_password": ADMIN_PASSWORD},
                       headers={"Authorization": "Bearer " + session["access_token"]})
    assert r.status_code == 200, r.text
    reset = None
    try:
        r = requests.post(url("/api/v1/auth/login"),
                          json={"login": "admin", "password": ADMIN_PASSWORD})
        assert_problem(r, 401)
        before = login("admin", changed)
        reset = stack("reset-admin", check=False)
        assert reset.returncode == 0, reset.stdout + reset.stderr
        assert "admin account reset" in reset.stdout, reset.stdout
    finally:
        if reset is None or reset.returncode != 0:
            auth_cli("bootstrap-admin", "--reset", check=False)
    after = login("admin", ADMIN_PASSWORD)
    assert after["user"]["id"] == session["user"]["id"]
    assert after["user"]["role"] == "admin"
    r = requests.post(url("/api/v1/auth/login"), json={"login": "admin", "password": changed})
    assert_problem(r, 401)
    r = requests.post(url("/api/v1/auth/refresh"),
                      json={"refresh_token": before["refresh_token"]})
    assert_problem(r, 401)


# ---- Schemathesis findings (issue 7, the contract test) ---------------------------

def bearer(user, password):
    return {"Authorization": "Bearer " + login(user["username"], password)["access_token"]}


def admin_bearer():
    return {"Authorization": "Bearer " + login("admin", ADMIN_PASSWORD)["access_token"]}


def test_patch_that_changes_nothing_is_422():
    """Schemathesis: PATCH /users/me without a body answered 200; the spec
    asks for at least one change, CONTRACT.md makes that 422."""
    user, pw = register()
    auth = bearer(user, pw)
    target = url("/api/v1/users/" + user["id"])
    for path, hdrs, cases in (
            ("/api/v1/users/me", auth, [None, {}, {"current_password": pw}, {"other": 1}]),
            (target[len(url("")):], admin_bearer(), [None, {}, {"other": 1}])):
        for body in cases:
            r = requests.patch(url(path), json=body, headers=hdrs)
            problem = assert_problem(r, 422)
            assert [e["field"] for e in problem["errors"]] == [""], (path, body, problem)
    assert requests.get(target).json()["bio"] == ""


@pytest.mark.parametrize("path, body", [
    ("/api/v1/auth/logout", {"refresh_token": None}),
    ("/api/v1/auth/refresh", {"refresh_token": None}),
    ("/api/v1/users/me", {"bio": None}),
    ("/api/v1/users/me", {"bio": None, "email": "x@example.test"}),
])
def test_null_for_a_string_member_is_422(path, body):
    """Schemathesis: logout took {"refresh_token": null} (a wrong type by
    the spec) for no token and answered 204."""
    user, pw = register()
    r = requests.request("PATCH" if path.endswith("/me") else "POST", url(path),
                         json=body, headers=bearer(user, pw))
    problem = assert_problem(r, 422)
    assert [e["field"] for e in problem["errors"]] == [next(iter(body))], problem


def test_admin_patch_null_is_422():
    user, _ = register()
    r = requests.patch(url("/api/v1/users/" + user["id"]), json={"role": "user", "disabled": None},
                       headers=admin_bearer())
    problem = assert_problem(r, 422)
    assert [e["field"] for e in problem["errors"]] == ["disabled"], problem


def test_nul_in_a_string_is_read_and_refused_as_a_value():
    r"""Schemathesis: a body with \u0000 in a string (valid JSON by RFC
    8259) answered 400 "not valid JSON"; it is now read, and a text member
    holding NUL is a 422 naming the member."""
    name = unique()
    raw = ('{"username":"%s\\u0000x","email":"%s@example.test","password":"long enough",'
           '"ignored":"a\\u0000b"}' % (name, name))
    r = requests.post(url("/api/v1/auth/register"), data=raw,
                      headers={"Content-Type": "application/json"})
    problem = assert_problem(r, 422)
    assert [e["field"] for e in problem["errors"]] == ["username"], problem
    # NUL in a member the route does not read changes nothing
    raw = ('{"username":"%s","email":"%s@example.test","password":"long enough",'
           '"ignored":"a\\u0000b"}' % (name, name))
    r = requests.post(url("/api/v1/auth/register"), data=raw,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("raw, detail", [
    ('{"login":"\\ud800","password":"x"}', "lone surrogate"),
    ('{"login":"x","password":"\\udc00\\ud800"}', "lone surrogate"),
    ('{"login":"x","password":"x","a\\u0000b":1}', "\\u0000 in a member name"),
    ('{"login":"x","password":"x","n":-99999999999999999999}', "out of range"),
    ('{"login":"x",', "not valid JSON"),
])
def test_json_without_a_unicode_reading_is_400_saying_why(raw, detail):
    r"""Schemathesis: valid JSON by RFC 8259 that jansson cannot hold (a
    lone surrogate escape, \u0000 in a member name, an integer beyond 64
    bits) answered 400 "not valid JSON"; the spec now documents the 400 and
    the detail names the cause."""
    r = requests.post(url("/api/v1/auth/login"), data=raw,
                      headers={"Content-Type": "application/json"})
    problem = assert_problem(r, 400)
    assert detail in problem["detail"], problem
