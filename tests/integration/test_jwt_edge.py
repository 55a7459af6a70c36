"""The jwt module through the real edge (issue 3): the attacks of RFC 8725
and those that hit other nginx JWT modules, spoofed X-Encore-* headers,
cookie authentication with its Origin check, roles, and key rotation with
reload.

Every forged token is sent to GET /api/v1/auth/me (encore_jwt required):
the edge must answer 401 problem+json with
WWW-Authenticate: Bearer error="invalid_token". test_forged_with_real_key_passes
proves that the forging itself is right, so each rejection below is caused by
the one thing the attack changes.
"""
import base64
import http.client
import json
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

import jwt_forge as jf
from conftest import (EDGE, RUN_DIR, ROOT, assert_problem, auth_cli, login, register,
                      url)

EDGE_PORT = int(os.environ.get("ENCORE_EDGE_PORT", "18080"))
ORIGIN = "http://127.0.0.1:%d" % EDGE_PORT
ME = "/api/v1/auth/me"


# ---- helpers ------------------------------------------------------------------

def me(tok, **kw):
    headers = dict(kw.pop("headers", {}))
    if tok is not None:
        headers["Authorization"] = "Bearer " + tok
    return requests.get(url(ME), headers=headers, **kw)


def assert_invalid_token(r):
    body = assert_problem(r, 401)
    www = r.headers.get("WWW-Authenticate", "")
    assert www.startswith('Bearer error="invalid_token"'), www
    return body


def user_of(session):
    u = dict(session["user"])
    u["token"] = session["access_token"]
    return u


@pytest.fixture(scope="module")
def alice():
    user, pw = register()
    return user_of(login(user["username"], pw))


@pytest.fixture(scope="module")
def bob():
    user, pw = register()
    return user_of(login(user["username"], pw))


@pytest.fixture(scope="module")
def admin():
    pw = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")
    return user_of(login("admin", pw))


@pytest.fixture(scope="module")
def signer():
    """(kid, private key) of the key the auth worker signs with now."""
    kid = jf.published_kids()[0]
    return jf.real_key(kid)


class NoFetchServer:
    """A listener standing in for an attacker's jku/x5u URL: the edge must
    never connect to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            c.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


# ---- the forge itself ------------------------------------------------------------

def test_forged_with_real_key_passes(alice, signer):
    r = me(jf.real_token(alice, signer))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == alice["id"]


def test_issued_token_passes_and_no_token_is_bare_bearer_401(alice):
    assert me(alice["token"]).json()["id"] == alice["id"]
    r = me(None)
    assert_problem(r, 401)
    # RFC 6750 3.1: no error code when no credentials were sent
    assert r.headers["WWW-Authenticate"] == "Bearer"


# ---- alg ----------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "none "])
@pytest.mark.parametrize("sig", ["empty", "real"])
def test_attack_alg_none_any_case(alice, signer, alg, sig):
    kid, key = signer
    h = jf.header_for(kid, alg=alg)
    c = jf.claims_for(alice, role="admin")
    tok = jf.token(h, c, jf.es256 if sig == "real" else None, key)
    assert_invalid_token(me(tok))


@pytest.mark.parametrize("alg", [None, 256, True, ["ES256"], {"alg": "ES256"},
                                 "", "es256", "ES256\u0000", "ES384", "ES512",
                                 "RS256", "EdDSA", "PS256"],
                         ids=lambda a: "alg=%r" % (a,))
def test_attack_alg_missing_not_string_or_not_allowed(alice, signer, alg):
    kid, key = signer
    h = jf.header_for(kid)
    if alg is None:
        del h["alg"]
    else:
        h["alg"] = alg
    # signed with the real key: only alg is wrong
    assert_invalid_token(me(jf.token(h, jf.claims_for(alice), jf.es256, key)))


@pytest.mark.parametrize("form", ["pem", "pem-no-newline", "der", "point",
                                  "jwk", "jwk-x"])
@pytest.mark.parametrize("with_kid", [True, False])
def test_attack_hs256_keyed_with_the_public_key(alice, signer, form, with_kid):
    kid, key = signer
    secret = jf.public_forms(key)[form]
    h = jf.header_for(kid if with_kid else None, alg="HS256")
    tok = jf.token(h, jf.claims_for(alice, role="admin"), jf.hs256, secret)
    assert_invalid_token(me(tok))


# ---- signatures -------------------------------------------------------------------------

def _resign(tok, sig):
    return tok.rsplit(".", 1)[0] + "." + jf.b64u(sig)


@pytest.mark.parametrize("case", ["stripped", "no-sig-segment", "truncated-63",
                                  "truncated-32", "one-extra-byte", "doubled",
                                  "der", "der-padded-to-64", "zero-64",
                                  "r-zero", "s-zero", "r-eq-n", "s-eq-n",
                                  "r-plus-n", "s-max", "flipped-bit",
                                  "tampered-payload", "attacker-key-same-kid"])
def test_attack_bad_signatures(alice, signer, case):
    kid, key = signer
    h = jf.header_for(kid)
    c = jf.claims_for(alice)
    si = jf.segment(h) + "." + jf.segment(c)
    r, s = jf.es256_rs(key, si)
    good = si + "." + jf.b64u(jf.p1363(r, s))
    assert me(good).status_code == 200  # the untouched token passes
    der = jf.es256_der(key, si)
    if case == "stripped":
        tok = si + "."
    elif case == "no-sig-segment":
        tok = si
    elif case == "truncated-63":
        tok = _resign(good, jf.p1363(r, s)[:63])
    elif case == "truncated-32":
        tok = _resign(good, jf.p1363(r, s)[:32])
    elif case == "one-extra-byte":
        tok = _resign(good, jf.p1363(r, s) + b"\x00")
    elif case == "doubled":
        tok = _resign(good, jf.p1363(r, s) * 2)
    elif case == "der":
        tok = _resign(good, der)
    elif case == "der-padded-to-64":
        tok = _resign(good, der[:64].ljust(64, b"\x00"))
    elif case == "zero-64":
        tok = _resign(good, b"\x00" * 64)
    elif case == "r-zero":
        tok = _resign(good, jf.p1363(0, s))
    elif case == "s-zero":
        tok = _resign(good, jf.p1363(r, 0))
    elif case == "r-eq-n":
        tok = _resign(good, jf.p1363(jf.P256_N, s))
    elif case == "s-eq-n":
        tok = _resign(good, jf.p1363(r, jf.P256_N))
    elif case == "r-plus-n":
        # r + n still fits 32 bytes for most r: the classic r >= n forgery
        # check; when it does not, use the largest 32-byte value
        rn = r + jf.P256_N
        tok = _resign(good, jf.p1363(rn if rn < 2 ** 256 else 2 ** 256 - 1, s))
    elif case == "s-max":
        tok = _resign(good, jf.p1363(r, 2 ** 256 - 1))
    elif case == "flipped-bit":
        sig = bytearray(jf.p1363(r, s))
        sig[40] ^= 0x01
        tok = _resign(good, bytes(sig))
    elif case == "tampered-payload":
        tok = (jf.segment(h) + "." + jf.segment(dict(c, role="admin")) + "."
               + good.rsplit(".", 1)[1])
    else:  # attacker-key-same-kid
        tok = jf.token(h, c, jf.es256, jf.attacker_key())
    assert_invalid_token(me(tok))


# ---- headers that point at keys --------------------------------------------------

@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
@pytest.mark.parametrize("with_kid", [True, False])
def test_attack_embedded_or_remote_key_headers(alice, signer, member, with_kid):
    kid, _ = signer
    evil = jf.attacker_key()
    srv = NoFetchServer()
    try:
        where = "http://127.0.0.1:%d/keys" % srv.port
        value = {"jwk": jf.jwk_of(evil), "jku": where, "x5u": where,
                 "x5c": [base64.b64encode(b"\x30\x82attacker-cert").decode()]}
        h = jf.header_for(kid if with_kid else None, **{member: value[member]})
        tok = jf.token(h, jf.claims_for(alice, role="admin"), jf.es256, evil)
        assert_invalid_token(me(tok))
        time.sleep(0.3)
        assert srv.hits == 0, "the edge fetched the attacker's %s" % member
    finally:
        srv.close()


def test_key_headers_are_ignored_on_a_genuine_token(alice, signer):
    """jwk/jku in a token signed by the real key change nothing: the key
    still comes from the key file, and nothing is fetched."""
    kid, key = signer
    srv = NoFetchServer()
    try:
        h = jf.header_for(kid, jku="http://127.0.0.1:%d/k" % srv.port,
                          jwk=jf.jwk_of(jf.attacker_key()))
        r = me(jf.token(h, jf.claims_for(alice), jf.es256, key))
        assert r.status_code == 200 and r.json()["id"] == alice["id"]
        time.sleep(0.3)
        assert srv.hits == 0
    finally:
        srv.close()


# ---- kid ------------------------------------------------------------------------------

@pytest.mark.parametrize("kid", ["../../../../../dev/null", "/dev/null",
                                 "..\\..\\secrets\\auth-keys", "unknown-kid",
                                 "K" * 10240, 42, None],
                         ids=["dotdot", "abs-path", "backslashes", "unknown",
                              "10KB", "number", "null"])
@pytest.mark.parametrize("how", ["real-key", "hs256-empty-secret"])
def test_attack_kid(alice, signer, kid, how):
    _, key = signer
    h = {"alg": "ES256" if how == "real-key" else "HS256", "kid": kid}
    if how == "real-key":
        tok = jf.token(h, jf.claims_for(alice), jf.es256, key)
    else:
        tok = jf.token(h, jf.claims_for(alice), jf.hs256, b"")
    assert_invalid_token(me(tok))


def test_attack_kid_with_nul_suffix(alice, signer):
    kid, key = signer
    h = '{"alg":"ES256","kid":"%s\\u0000"}' % kid
    assert_invalid_token(me(jf.token(h, jf.claims_for(alice), jf.es256, key)))


def test_attack_kid_names_one_key_no_fallback(alice, signer):
    """A kid that names the real key with a signature of another key fails;
    the edge does not go on to try other keys."""
    kid, _ = signer
    h = jf.header_for(kid)
    assert_invalid_token(me(jf.token(h, jf.claims_for(alice), jf.es256,
                                     jf.attacker_key())))


# ---- crit -------------------------------------------------------------------------------

@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["x-unknown"], [], "b64",
                                  [1], None],
                         ids=lambda c: "crit=%r" % (c,))
def test_attack_crit(alice, signer, crit):
    kid, key = signer
    h = jf.header_for(kid)
    h["crit"] = crit
    if crit == ["b64"]:
        h["b64"] = False
    assert_invalid_token(me(jf.token(h, jf.claims_for(alice), jf.es256, key)))


# ---- encoding ---------------------------------------------------------------------------

def _with_urlsafe_chars(alice, signer):
    """A genuine token whose encoding holds '-' or '_' somewhere (the
    signature is random: retry until it does)."""
    for _ in range(64):
        tok = jf.real_token(alice, signer)
        if "-" in tok or "_" in tok:
            return tok
    raise AssertionError("no token with - or _ in 64 tries")


@pytest.mark.parametrize("case", ["standard-alphabet", "padding", "two-segments",
                                  "four-segments", "trailing-dot",
                                  "leading-dot", "inner-space", "tab-inside",
                                  "empty-header", "empty-payload",
                                  "non-base64-char"])
def test_attack_encoding(alice, signer, case):
    tok = _with_urlsafe_chars(alice, signer)
    h, p, s = tok.split(".")
    assert me(tok).status_code == 200
    if case == "standard-alphabet":
        bad = tok.replace("-", "+").replace("_", "/")
    elif case == "padding":
        # pad every segment to a multiple of 4 (at least one needs it)
        pad = lambda x: x + "=" * (-len(x) % 4)
        bad = ".".join(map(pad, (h, p, s)))
        assert bad != tok, "no segment needed padding"
        bad = ".".join((h, p, s + "=="))
    elif case == "two-segments":
        bad = h + "." + p
    elif case == "four-segments":
        bad = tok + "." + s
    elif case == "trailing-dot":
        bad = tok + "."
    elif case == "leading-dot":
        bad = "." + tok
    elif case == "inner-space":
        bad = h + "." + p[:10] + " " + p[10:] + "." + s
    elif case == "tab-inside":
        bad = h + ".\t" + p + "." + s
    elif case == "empty-header":
        bad = "." + p + "." + s
    elif case == "empty-payload":
        bad = h + ".." + s
    else:
        bad = h + "." + p + "." + s[:-2] + "*" + s[-1]
    assert_invalid_token(me(bad))


# ---- JSON ----------------------------------------------------------------------------------

def _claims_text(alice, **over):
    return json.dumps(jf.claims_for(alice, **over), separators=(",", ":"))


@pytest.mark.parametrize("case", [
    "header-dup-alg", "header-dup-kid", "payload-dup-sub", "payload-dup-role",
    "payload-dup-exp", "header-array", "header-string", "header-null",
    "payload-array", "payload-string", "payload-number",
    "payload-invalid-utf8", "header-invalid-utf8", "payload-overlong-utf8",
    "payload-lone-surrogate", "payload-nested-100", "payload-nested-5000",
    "header-nested-20", "payload-trailing-garbage", "payload-nul-escape",
    "payload-two-objects"])
def test_attack_json(alice, bob, signer, case):
    kid, key = signer
    h = json.dumps(jf.header_for(kid), separators=(",", ":"))
    c = _claims_text(alice)
    body = c[1:]  # the claims' members without the opening brace
    if case == "header-dup-alg":
        h = '{"alg":"none","alg":"ES256","kid":"%s"}' % kid
    elif case == "header-dup-kid":
        h = '{"alg":"ES256","kid":"evil","kid":"%s"}' % kid
    elif case == "payload-dup-sub":
        c = '{"sub":"%s",%s' % (bob["id"], body)
    elif case == "payload-dup-role":
        c = c[:-1] + ',"role":"admin"}'
    elif case == "payload-dup-exp":
        c = c[:-1] + ',"exp":%d}' % (int(time.time()) + 10 ** 8)
    elif case == "header-array":
        h = "[%s]" % h
    elif case == "header-string":
        h = json.dumps(h)
    elif case == "header-null":
        h = "null"
    elif case == "payload-array":
        c = "[%s]" % c
    elif case == "payload-string":
        c = json.dumps(c)
    elif case == "payload-number":
        c = "1"
    elif case == "payload-invalid-utf8":
        c = c.encode()[:-1] + b',"x":"\xff\xfe"}'
    elif case == "header-invalid-utf8":
        h = h.encode()[:-1] + b',"x":"\xc3\x28"}'
    elif case == "payload-overlong-utf8":
        c = c.encode()[:-1] + b',"x":"\xc0\xaf"}'
    elif case == "payload-lone-surrogate":
        c = c[:-1] + ',"x":"\\ud800"}'
    elif case == "payload-nested-100":
        c = c[:-1] + ',"x":' + "[" * 100 + "]" * 100 + "}"
    elif case == "payload-nested-5000":
        c = c[:-1] + ',"x":' + "[" * 5000 + "]" * 5000 + "}"
    elif case == "header-nested-20":
        h = h[:-1] + ',"x":' + "[" * 20 + "]" * 20 + "}"
    elif case == "payload-trailing-garbage":
        c = c + "x"
    elif case == "payload-nul-escape":
        c = c[:-1] + ',"x":"a\\u0000b"}'
    else:
        c = c + c
    assert_invalid_token(me(jf.token(h, c, jf.es256, key)))


# ---- time -----------------------------------------------------------------------------------

# conf/jwt.conf: encore_jwt_leeway 30s; rejected when now >= exp + 30 or
# now < nbf - 30. Margins of 5 s keep the accepted cases off the edge.
@pytest.mark.parametrize("claims,ok", [
    ({"exp": -25}, True),                 # expired, inside the leeway
    ({"exp": -30}, False),                # exactly at the leeway's edge
    ({"exp": -31}, False),
    ({"exp": -3600}, False),
    ({"nbf": 25}, True),                  # not yet valid, inside the leeway
    ({"nbf": 35}, False),
    ({"nbf": 3600}, False),
], ids=lambda v: repr(v))
def test_time_claims_and_leeway(alice, signer, claims, ok):
    now = int(time.time())
    over = {k: now + v for k, v in claims.items()}
    r = me(jf.real_token(alice, signer, **over))
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert_invalid_token(r)


@pytest.mark.parametrize("exp", ["9999999999", True, None, [1], {"t": 1},
                                 -1, 2 ** 63, 2 ** 64 + 5, 10 ** 30, 1e300,
                                 253402300800, "missing"],
                         ids=lambda v: "exp=%r" % (v,))
def test_attack_exp_wrong_type_or_out_of_range(alice, signer, exp):
    kid, key = signer
    c = jf.claims_for(alice)
    if exp == "missing":
        del c["exp"]
        text = json.dumps(c)
    else:
        del c["exp"]
        # exact JSON text: 2**64+5 and 1e300 must reach the parser as written
        text = json.dumps(c)[:-1] + ',"exp":%s}' % json.dumps(exp)
    assert_invalid_token(me(jf.token(jf.header_for(kid), text, jf.es256, key)))


def test_exp_as_fraction_is_a_numeric_date(alice, signer):
    r = me(jf.real_token(alice, signer, exp=time.time() + 600.5))
    assert r.status_code == 200, r.text


def test_cached_verdict_still_checks_time(alice, signer):
    """The cache holds signature verdicts only: a token that was accepted
    (and cached) is refused once it expires."""
    # expired, but inside the 30 s leeway (conf/jwt.conf) for 4-5 s more:
    # room for two requests on a loaded machine
    exp = int(time.time()) - 25
    tok = jf.real_token(alice, signer, exp=exp)
    assert me(tok).status_code == 200
    assert me(tok).status_code == 200   # now served from the cache
    # then past the leeway by 2 s, whatever the two requests took
    time.sleep(max(0.0, exp + 30 + 2 - time.time()))
    assert_invalid_token(me(tok))


# ---- iat (issue 14: revocations compare against it) ------------------------------------------

def _problem_detail(r):
    body = assert_invalid_token(r)
    return body["detail"], r.headers["WWW-Authenticate"]


def _with_iat(user, signer, iat_json):
    """A genuine token whose iat is the exact JSON text given, or none."""
    kid, key = signer
    c = jf.claims_for(user, iat=None)
    text = json.dumps(c, separators=(",", ":"))
    if iat_json is not None:
        text = text[:-1] + ',"iat":%s}' % iat_json
    return jf.token(jf.header_for(kid), text, jf.es256, key)


@pytest.mark.parametrize("iat,reason", [
    (None, "iat missing"),
    ('"%d"' % time.time(), "iat is not a valid NumericDate"),
    ("null", "iat is not a valid NumericDate"),
    ("true", "iat is not a valid NumericDate"),
    ("[1]", "iat is not a valid NumericDate"),
    ("-1", "iat is not a valid NumericDate"),
    ("1e300", "iat is not a valid NumericDate"),
    ("%d" % (time.time() + 3600), "token issued in the future"),
    ("%d" % (time.time() + 10 * 365 * 86400), "token issued in the future"),
], ids=["missing", "string", "null", "bool", "array", "negative", "huge",
        "1h-ahead", "10y-ahead"])
def test_attack_iat_missing_wrong_type_or_future(alice, signer, iat, reason):
    tok = _with_iat(alice, signer, iat)
    for _ in range(2):      # a miss, then whatever the cache may hold
        detail, www = _problem_detail(me(tok))
        assert detail == reason
        assert 'error_description="%s"' % reason in www


@pytest.mark.parametrize("ahead,ok", [(0, True), (25, True), (35, False)],
                         ids=["now", "in-leeway", "past-leeway"])
def test_iat_future_leeway(alice, signer, ahead, ok):
    # conf/jwt.conf: encore_jwt_leeway 30s; 5 s margins off the edge
    r = me(_with_iat(alice, signer, "%d" % (time.time() + ahead)))
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert _problem_detail(r)[0] == "token issued in the future"


def test_iat_fraction_is_a_numeric_date(alice, signer):
    r = me(_with_iat(alice, signer, "%.3f" % (time.time() - 1.5)))
    assert r.status_code == 200, r.text


def test_auth_worker_tokens_carry_integer_iat_and_pass(alice):
    claims = jf.decode_part(alice["token"], 1)
    assert isinstance(claims["iat"], int)
    assert claims["iat"] <= time.time() + 1
    assert me(alice["token"]).status_code == 200


# ---- role set (conf/jwt.conf: encore_jwt_roles user moderator admin) --------------------------

@pytest.mark.parametrize("role", ["root", "Admin", "", "admin ", 1, True, None,
                                  ["admin"], {"r": "admin"}],
                         ids=lambda v: "role=%r" % (v,))
def test_attack_unknown_role_is_401(alice, signer, role):
    kid, key = signer
    c = jf.claims_for(alice, role=None)
    text = json.dumps(c, separators=(",", ":"))
    if role is not None:
        text = text[:-1] + ',"role":%s}' % json.dumps(role)
    detail, www = _problem_detail(me(jf.token(jf.header_for(kid), text,
                                              jf.es256, key)))
    assert detail == "role not accepted"


@pytest.mark.parametrize("role", ["user", "moderator", "admin"])
def test_known_roles_pass(alice, signer, role):
    r = me(jf.real_token(alice, signer, role=role))
    assert r.status_code == 200, r.text


# ---- ECDSA low S ------------------------------------------------------------------------------

def test_attack_high_s_twin_of_a_valid_token(alice, signer):
    """(r, n - s) is the same signature in its other form: one observed
    token must not yield a second valid string."""
    kid, key = signer
    h, c = jf.header_for(kid), jf.claims_for(alice)
    si = jf.segment(h) + "." + jf.segment(c)
    low = jf.es256(key, si)
    assert me(si + "." + jf.b64u(low)).status_code == 200
    high = jf.p1363(int.from_bytes(low[:32], "big"),
                    jf.P256_N - int.from_bytes(low[32:], "big"))
    detail, www = _problem_detail(me(si + "." + jf.b64u(high)))
    assert detail == "ES256 signature not in low-S form"


def test_attack_high_s_twin_of_an_issued_token(alice):
    h, p, sig = alice["token"].split(".")
    raw = jf.b64u_decode(sig)
    s = int.from_bytes(raw[32:], "big")
    assert s <= jf.P256_N // 2, "the auth worker issued a high-S signature"
    twin = raw[:32] + (jf.P256_N - s).to_bytes(32, "big")
    assert me(alice["token"]).status_code == 200
    assert _problem_detail(me(h + "." + p + "." + jf.b64u(twin)))[0] \
        == "ES256 signature not in low-S form"


def test_auth_worker_signatures_are_all_low_s():
    user, pw = register()
    for _ in range(16):
        tok = login(user["username"], pw)["access_token"]
        s = int.from_bytes(jf.b64u_decode(tok.split(".")[2])[32:], "big")
        assert s <= jf.P256_N // 2
        assert me(tok).status_code == 200


# ---- iss / aud ------------------------------------------------------------------------------

@pytest.mark.parametrize("aud,ok", [
    ("encore-api", True), (["encore-api"], True), (["other", "encore-api"], True),
    ("other", False), (["other"], False), ([], False), (5, False),
    ([5, "encore-api"], False), ("encore-api ", False), ("ENCORE-API", False),
    (None, False),
], ids=lambda v: repr(v))
def test_audience_string_and_array(alice, signer, aud, ok):
    r = me(jf.real_token(alice, signer, aud=aud))  # None: no aud at all
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert_invalid_token(r)


@pytest.mark.parametrize("iss", ["evil", "Encore", "encore\u0000", "", 1,
                                 ["encore"], None],
                         ids=lambda v: "iss=%r" % (v,))
def test_attack_wrong_issuer(alice, signer, iss):
    if iss == "encore\u0000":
        kid, key = signer
        c = jf.claims_for(alice, iss=None)
        text = json.dumps(c)[:-1] + ',"iss":"encore\\u0000"}'
        tok = jf.token(jf.header_for(kid), text, jf.es256, key)
    else:
        tok = jf.real_token(alice, signer, iss=iss)  # None: no iss at all
    assert_invalid_token(me(tok))


# ---- two tokens in one request ------------------------------------------------------------

def _raw(method, path, headers, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", EDGE_PORT, timeout=10)
    try:
        conn.putrequest(method, path)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


@pytest.mark.parametrize("order", ["valid-first", "forged-first"])
def test_attack_two_authorization_headers(alice, bob, signer, order):
    good = alice["token"]
    forged = jf.token(jf.header_for(signer[0]), jf.claims_for(bob, role="admin"),
                      jf.es256, jf.attacker_key())
    pair = [good, forged] if order == "valid-first" else [forged, good]
    status, headers, body = _raw("GET", ME, [("Authorization", "Bearer " + t)
                                             for t in pair])
    # nginx refuses a repeated Authorization header outright
    assert status in (400, 401), (status, body)
    assert headers["Content-Type"].startswith("application/problem+json")


def test_two_tokens_bearer_wins_over_cookie(alice, bob):
    r = requests.get(url(ME), headers={
        "Authorization": "Bearer " + alice["token"],
        "Cookie": "encore_access=" + bob["token"]})
    assert r.status_code == 200 and r.json()["id"] == alice["id"]


def test_attack_bad_bearer_does_not_fall_back_to_cookie(alice, bob):
    bad = alice["token"][:-4] + "AAAA"
    r = requests.get(url(ME), headers={
        "Authorization": "Bearer " + bad,
        "Cookie": "encore_access=" + bob["token"]})
    assert_invalid_token(r)


def test_attack_two_access_cookies_forged_first(alice, bob, signer):
    forged = jf.token(jf.header_for(signer[0]), jf.claims_for(bob),
                      jf.es256, jf.attacker_key())
    r = requests.get(url(ME), headers={
        "Cookie": "encore_access=%s; encore_access=%s" % (forged, alice["token"])})
    assert r.status_code == 401 or r.json()["id"] == alice["id"], r.text
    assert r.status_code != 200 or r.json()["id"] != bob["id"]


# ---- claims that would split headers -----------------------------------------------------

@pytest.mark.parametrize("claim", ["sub", "role", "name"])
@pytest.mark.parametrize("evil", ["x\r\nX-Encore-User-Role: admin",
                                  "x\nX-Encore-User-Role: admin",
                                  "x\rY", "tab\there", "del\x7f"],
                         ids=["crlf", "lf", "cr", "tab", "del"])
def test_attack_claim_with_crlf_never_reaches_a_header(alice, signer, claim,
                                                         evil):
    r = me(jf.real_token(alice, signer, **{claim: evil}))
    assert_invalid_token(r)
    assert "admin" not in r.headers.get("X-Encore-User-Role", "")


# ---- no state across requests on one keep-alive connection ---------------------------------

def test_attack_keepalive_bad_then_forged_then_none(alice, bob, signer):
    kid, _ = signer
    forged = jf.token(jf.header_for(kid), jf.claims_for(bob, role="admin"),
                      jf.es256, jf.attacker_key())
    conn = http.client.HTTPConnection("127.0.0.1", EDGE_PORT, timeout=10)
    seen = []

    def get(path, tok):
        hdrs = {"Authorization": "Bearer " + tok} if tok else {}
        conn.request("GET", path, headers=hdrs)
        r = conn.getresponse()
        body = r.read()
        seen.append(conn.sock)
        return r.status, body

    try:
        assert get(ME, alice["token"][:-6] + "AAAAAA")[0] == 401
        assert get(ME, forged)[0] == 401
        status, body = get(ME, alice["token"])
        assert status == 200 and json.loads(body)["id"] == alice["id"]
        # a valid request leaves nothing behind for the next one
        assert get(ME, forged)[0] == 401
        assert get(ME, None)[0] == 401
        status, body = get("/api/v1/users/" + alice["id"], None)
        assert status == 200 and "email" not in json.loads(body)
        assert all(s is seen[0] for s in seen), "the connection was not reused"
    finally:
        conn.close()


# ---- size ----------------------------------------------------------------------------------

def test_attack_token_over_max_size_is_401(alice):
    """Above encore_jwt_max_size (8k) but inside nginx's header buffers."""
    tok = alice["token"] + "A" * (10 * 1024)
    assert_invalid_token(me(tok))


def test_attack_1mb_token_is_problem_400_or_431(alice):
    r = me("A" * (1024 * 1024))
    assert r.status_code in (400, 431), r.status_code
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["status"] == r.status_code
    assert me(alice["token"]).status_code == 200  # the edge is fine


def test_attack_1mb_cookie_token_is_problem_400_or_431():
    r = requests.get(url(ME), headers={"Cookie": "encore_access=" + "A" * (1 << 20)})
    assert r.status_code in (400, 431), r.status_code
    assert r.headers["Content-Type"].startswith("application/problem+json")


# ---- spoofed X-Encore-* headers ----------------------------------------------------------

SPOOF_NAMES = ["X-Encore-User-Id", "x-encore-user-id", "X-ENCORE-USER-ID"]


@pytest.mark.parametrize("name", SPOOF_NAMES)
def test_attack_spoofed_identity_with_valid_token(alice, bob, name):
    r = me(alice["token"], headers={name: bob["id"],
                                    "X-Encore-User-Role": "admin",
                                    "X-Encore-User-Name": bob["username"]})
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["id"] == alice["id"] and u["username"] == alice["username"]


def test_attack_spoofed_identity_without_token(alice):
    """On an optional-identity route a client-sent X-Encore-User-Id naming
    the profile's owner would reveal the email; the edge drops it."""
    r = requests.get(url("/api/v1/users/" + alice["id"]), headers={
        "X-Encore-User-Id": alice["id"], "X-Encore-User-Role": "admin"})
    assert r.status_code == 200
    assert "email" not in r.json()
    r = requests.get(url("/api/v1/users/" + alice["id"]),
                     headers={"Authorization": "Bearer " + alice["token"]})
    assert r.json().get("email") == alice["email"]  # the owner does see it


def test_attack_spoofed_admin_role_cannot_patch_users(alice):
    r = requests.patch(url("/api/v1/users/" + alice["id"]), json={"role": "admin"},
                       headers={"X-Encore-User-Id": alice["id"],
                                "X-Encore-User-Role": "admin"})
    assert r.status_code in (401, 403), r.text
    r = requests.get(url("/api/v1/users"), headers={
        "Authorization": "Bearer " + alice["token"], "X-Encore-User-Role": "admin"})
    assert r.status_code == 403


ECHO_CONF = """\
# written by tests/integration/test_jwt_edge.py: what a worker receives
location = /echo-identity {
    encore_jwt  optional;
    proxy_pass  http://unix:%(run)s/run/probe.sock:/echo-identity;
    include     proxy.conf;
}
location = /echo-identity-nojwt {
    proxy_pass  http://unix:%(run)s/run/probe.sock:/echo-identity;
    include     proxy.conf;
}
# verified here, then an internal redirect into a location without jwt
location = /echo-identity-redirect {
    encore_jwt  optional;
    try_files   /nonexistent-%(run_hash)s @echo_identity_nojwt;
}
location @echo_identity_nojwt {
    rewrite     ^ /echo-identity break;
    proxy_pass  http://unix:%(run)s/run/probe.sock;
    include     proxy.conf;
}
# a claim in an operator's header
location = /echo-claim {
    encore_jwt  optional;
    add_header  X-Claim-Email "$encore_jwt_claim_email" always;
    include     security-headers.conf;
    proxy_pass  http://unix:%(run)s/run/probe.sock:/echo-identity;
    include     proxy.conf;
}
# the access cookie read through a variable: as ambient as cookie=
location = /echo-cookie-variable {
    encore_jwt        required;
    encore_jwt_token  $cookie_encore_access;
    proxy_pass  http://unix:%(run)s/run/probe.sock:/echo-identity;
    include     proxy.conf;
}
"""


def _json_or_none(r):
    try:
        return r.json() if r.status_code == 200 else {}
    except ValueError:
        return {}


def _reload_edge():
    subprocess.run([str(ROOT / "auto" / "stack"), "reload"], check=True,
                   capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def echo():
    if not (RUN_DIR / "run" / "probe.sock").exists():
        pytest.skip("the probe worker is not running (ENCORE_WORKERS)")
    d = RUN_DIR / "conf" / "server.d"
    d.mkdir(exist_ok=True)
    f = d / "echo-identity.conf"
    f.write_text(ECHO_CONF % {"run": RUN_DIR, "run_hash": uuid.uuid4().hex})
    _reload_edge()
    # until the reloaded workers answer (before, the web UI's fallback does)
    deadline = time.time() + 30
    for path in ("/echo-identity", "/echo-identity-nojwt",
                 "/echo-identity-redirect", "/echo-claim"):
        while "headers" not in _json_or_none(requests.get(url(path))):
            assert time.time() < deadline, "the echo route never came up"
            time.sleep(0.2)
    yield lambda path, **h: requests.get(url(path), headers=h)
    f.unlink()
    _reload_edge()


SPOOFED = {"X-Encore-User-Id": "00000000-0000-0000-0000-000000000000",
           "X-Encore-User-Role": "admin", "X-Encore-User-Name": "root",
           "X-Encore-Anything": "1", "X-Encore-Admin": "yes"}


@pytest.mark.parametrize("path", ["/echo-identity", "/echo-identity-nojwt"])
def test_attack_spoofed_headers_removed_unauthenticated(echo, path):
    r = echo(path, **SPOOFED)
    assert r.status_code == 200, r.text
    assert r.json()["headers"] == dict.fromkeys(SPOOFED)


def test_attack_spoofed_headers_replaced_when_authenticated(echo, alice):
    r = echo("/echo-identity", Authorization="Bearer " + alice["token"], **SPOOFED)
    assert r.status_code == 200, r.text
    assert r.json()["headers"] == {
        "X-Encore-User-Id": alice["id"], "X-Encore-User-Role": "user",
        "X-Encore-User-Name": alice["username"],
        "X-Encore-Anything": None, "X-Encore-Admin": None}


def test_attack_spoofed_headers_many_and_repeated(echo, alice):
    """Past the first part of nginx's header list (20 entries) and repeated
    names: the list is rebuilt without any of them."""
    hdrs = [("X-Encore-Anything", str(i)) for i in range(30)]
    hdrs += [("X-Filler-%d" % i, "f") for i in range(30)]
    hdrs += [("X-Encore-User-Id", "spoof"), ("x-encore-user-role", "admin"),
             ("Authorization", "Bearer " + alice["token"])]
    status, _, body = _raw("GET", "/echo-identity", hdrs)
    assert status == 200, body
    assert json.loads(body)["headers"] == {
        "X-Encore-User-Id": alice["id"], "X-Encore-User-Role": "user",
        "X-Encore-User-Name": alice["username"],
        "X-Encore-Anything": None, "X-Encore-Admin": None}


def test_identity_headers_dropped_on_redirect_into_a_location_without_jwt(
        echo, alice):
    """A token verified in one location, then an internal redirect
    (try_files, error_page) into a location with encore_jwt off: no
    identity reaches that location's worker, spoofed or verified."""
    r = echo("/echo-identity-redirect", Authorization="Bearer " + alice["token"],
             **SPOOFED)
    assert r.status_code == 200, r.text
    assert r.json()["headers"] == dict.fromkeys(SPOOFED)


@pytest.mark.parametrize("evil", ["a\r\nX-Injected: 1", "a\nX-Injected: 1",
                                  "tab\there"], ids=["crlf", "lf", "tab"])
def test_attack_claim_variable_with_controls_is_empty(echo, alice, signer, evil):
    r = echo("/echo-claim", Authorization="Bearer "
             + jf.real_token(alice, signer, email=evil))
    assert r.status_code == 200, r.text
    assert "X-Injected" not in r.headers
    assert r.headers.get("X-Claim-Email", "") == ""
    # a clean claim is there
    r = echo("/echo-claim", Authorization="Bearer "
             + jf.real_token(alice, signer, email="a@example.test"))
    assert r.headers["X-Claim-Email"] == "a@example.test"


def test_attack_csrf_cookie_read_through_a_variable(echo, alice):
    cookie = {"Cookie": "encore_access=" + alice["token"]}
    r = requests.post(url("/echo-cookie-variable"), headers=cookie)
    assert_problem(r, 403)
    r = requests.post(url("/echo-cookie-variable"),
                      headers=dict(cookie, Origin=ORIGIN))
    assert r.status_code != 403, r.text


def test_identity_headers_of_a_forged_token_never_reach_the_worker(echo, bob,
                                                                    signer):
    forged = jf.token(jf.header_for(signer[0]), jf.claims_for(bob, role="admin"),
                      jf.es256, jf.attacker_key())
    r = echo("/echo-identity", Authorization="Bearer " + forged)
    assert_invalid_token(r)


# ---- cookie authentication and Origin ------------------------------------------------------

def test_cookie_only_authenticates_get(alice):
    r = requests.get(url(ME), headers={"Cookie": "encore_access=" + alice["token"]})
    assert r.status_code == 200 and r.json()["id"] == alice["id"]


@pytest.mark.parametrize("origin", [None, "http://evil.example", "null",
                                    "http://127.0.0.1:%d.evil" % EDGE_PORT,
                                    "https://evil.example/http://127.0.0.1",
                                    "https://127.0.0.1:%d" % EDGE_PORT],
                         ids=["none", "evil", "null", "suffix", "embedded",
                              "other-scheme"])
def test_attack_cookie_csrf_unsafe_method_needs_origin(alice, origin):
    hdrs = {"Cookie": "encore_access=" + alice["token"]}
    if origin:
        hdrs["Origin"] = origin
    r = requests.patch(url("/api/v1/users/me"), json={"bio": "csrf"}, headers=hdrs)
    assert_problem(r, 403)
    bio = me(alice["token"]).json()["bio"]
    assert bio != "csrf"


def test_cookie_unsafe_method_with_matching_origin_passes(alice):
    r = requests.patch(url("/api/v1/users/me"), json={"bio": "by cookie"},
                       headers={"Cookie": "encore_access=" + alice["token"],
                                "Origin": ORIGIN})
    assert r.status_code == 200, r.text
    assert me(alice["token"]).json()["bio"] == "by cookie"


def test_attack_cookie_csrf_with_a_matching_forged_host(alice):
    """Host: evil.example with Origin: http://evil.example: the Origin
    equals the request's own Host, but not an origin of this server."""
    hdrs = {"Cookie": "encore_access=" + alice["token"], "Host": "evil.example",
            "Origin": "http://evil.example"}
    r = requests.patch(url("/api/v1/users/me"), json={"bio": "host-csrf"},
                       headers=hdrs)
    body = assert_problem(r, 403)
    assert "Origin" in body["detail"]
    assert me(alice["token"]).json()["bio"] != "host-csrf"
    # with the port too, and a Host naming this server but an evil Origin
    for host, origin in (("evil.example:%d" % EDGE_PORT,
                          "http://evil.example:%d" % EDGE_PORT),
                         ("127.0.0.1:%d" % EDGE_PORT, "http://evil.example")):
        r = requests.patch(url("/api/v1/users/me"), json={"bio": "host-csrf"},
                           headers=dict(hdrs, Host=host, Origin=origin))
        assert_problem(r, 403)


def test_cookie_unsafe_method_origin_is_the_servers_whatever_the_host(alice):
    """The server's own origins (address and server_name with the port)
    pass, even when Host names something else."""
    for origin in (ORIGIN, "http://localhost:%d" % EDGE_PORT):
        r = requests.patch(url("/api/v1/users/me"), json={"bio": "ok"},
                           headers={"Cookie": "encore_access=" + alice["token"],
                                    "Host": "evil.example", "Origin": origin})
        assert r.status_code == 200, (origin, r.text)


def test_bearer_unsafe_method_needs_no_origin(alice):
    r = requests.patch(url("/api/v1/users/me"), json={"bio": "by bearer"},
                       headers={"Authorization": "Bearer " + alice["token"]})
    assert r.status_code == 200, r.text


# ---- roles ------------------------------------------------------------------------------------

def test_role_requirement_is_403_insufficient_scope(alice):
    r = requests.get(url("/api/v1/users"),
                     headers={"Authorization": "Bearer " + alice["token"]})
    assert_problem(r, 403)
    assert r.headers["WWW-Authenticate"].startswith('Bearer error="insufficient_scope"')


def test_role_requirement_admin_passes(admin):
    r = requests.get(url("/api/v1/users"),
                     headers={"Authorization": "Bearer " + admin["token"]})
    assert r.status_code == 200, r.text


def test_attack_role_claim_tampered_to_admin(alice):
    h, p, s = alice["token"].split(".")
    claims = jf.decode_part(alice["token"], 1)
    claims["role"] = "admin"
    tok = h + "." + jf.segment(claims) + "." + s
    r = requests.get(url("/api/v1/users"), headers={"Authorization": "Bearer " + tok})
    assert_invalid_token(r)


# ---- key rotation with reload (last: it changes the signing key) ------------------------------

def _stack(*args):
    return subprocess.run([str(ROOT / "auto" / "stack"), *args], check=True,
                          capture_output=True, text=True, timeout=300)


def _wait_status(tok, want, timeout=30):
    deadline = time.time() + timeout
    while True:
        r = me(tok)
        if r.status_code == want:
            return r
        assert time.time() < deadline, (want, r.status_code, r.text)
        time.sleep(0.2)


def test_key_rotation_with_reload(alice):
    old_tok = login(alice["username"], "correct horse battery")["access_token"]
    old_kid = jf.decode_part(old_tok, 0)["kid"]
    assert me(old_tok).status_code == 200          # and now in the cache

    auth_cli("rotate-key")
    _stack("reload")
    _stack("stop-worker", "auth")
    _stack("start-worker", "auth")

    kids = jf.published_kids()
    assert len(kids) >= 2 and old_kid in kids
    new_tok = login(alice["username"], "correct horse battery")["access_token"]
    new_kid = jf.decode_part(new_tok, 0)["kid"]
    assert new_kid != old_kid and new_kid in kids

    assert _wait_status(new_tok, 200).json()["id"] == alice["id"]
    assert me(old_tok).status_code == 200          # still published

    old_key = jf.real_key(old_kid)
    auth_cli("remove-key", old_kid)
    _stack("reload")
    # the cached verdict for old_tok belongs to the old key set's generation
    assert_invalid_token(_wait_status(old_tok, 401))
    assert me(new_tok).status_code == 200
    # the removed key signs nothing the edge accepts, fresh claims or not
    assert old_kid not in jf.published_kids()
    assert_invalid_token(me(jf.real_token(alice, old_key)))
