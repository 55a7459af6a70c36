"""Documented edge directives and variables that the stack's configuration
does not use, on a private nginx with the stack's module (ngx_modules/jwt
and ngx_modules/route README.md): the algorithms besides ES256 (RS256,
EdDSA, HS256), `encore_jwt_require`, `encore_jwt_cache off`, and the
`$encore_param_*` variables.

A small HTTP server in the test stands in for a worker: it answers what it
received (identity headers, the headers set from route variables) as JSON,
so each test sees what the edge forwarded. (A second server in the same
nginx would not do: the module removes X-Encore-* headers in every server.)
"""
import http.server
import json
import os
import threading
import time
import uuid

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

import jwt_forge as jf
from test_metrics import private_nginx  # noqa: F401 (a fixture)

ALGS = ("ES256", "RS256", "EdDSA", "HS256")


# ---- keys and tokens of every algorithm ------------------------------------------

def new_key(alg):
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return os.urandom(32)


def public_jwk(alg, key, kid):
    if alg == "ES256":
        jwk = jf.jwk_of(key)
    elif alg == "RS256":
        n = key.public_key().public_numbers()
        jwk = {"kty": "RSA",
               "n": jf.b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
               "e": jf.b64u(n.e.to_bytes((n.e.bit_length() + 7) // 8, "big"))}
    elif alg == "EdDSA":
        from cryptography.hazmat.primitives import serialization
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": jf.b64u(raw)}
    else:
        jwk = {"kty": "oct", "k": jf.b64u(key)}
    return dict(jwk, kid=kid, alg=alg, use="sig")


def sign(alg, key, signing_input):
    data = signing_input.encode()
    if alg == "ES256":
        return jf.es256(key, signing_input)
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == "EdDSA":
        return key.sign(data)
    return jf.hs256(key, signing_input)


def make_token(alg, key, kid, **claims):
    now = int(time.time())
    c = {"iss": "encore", "aud": "encore-api", "sub": str(uuid.uuid4()),
         "role": "user", "name": "n_" + uuid.uuid4().hex[:8],
         "iat": now, "exp": now + 600}
    for k, v in claims.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return jf.token({"alg": alg, "typ": "JWT", "kid": kid}, c,
                    lambda k, si: sign(alg, k, si), key), c


# ---- the private edge --------------------------------------------------------------

EDGE_CONF = """
    encore_jwt_cache_zone  t_jwt:1m;
    encore_jwt_key_file    %(keys)s;
    encore_jwt_algorithms  ES256 RS256 EdDSA HS256;
    encore_jwt_issuer      encore;
    encore_jwt_audience    encore-api;

    upstream be { server 127.0.0.1:%(be)d; }

    server {
        listen  127.0.0.1:@PORT@;
        add_header  X-Jwt-Cache  "$encore_jwt_cache" always;
        add_header  X-Jwt-Error  "$encore_jwt_error" always;

        location /any/ {
            encore_jwt  required;
            proxy_pass  http://be;
        }
        location /es256-only/ {
            encore_jwt             required;
            encore_jwt_algorithms  ES256;
            proxy_pass             http://be;
        }
        location /nocache/ {
            encore_jwt        required;
            encore_jwt_cache  off;
            proxy_pass        http://be;
        }
        location /admin/ {
            encore_jwt          required;
            encore_jwt_require  role admin editor;
            proxy_pass          http://be;
        }
        location /ops/ {
            encore_jwt          required;
            encore_jwt_require  groups ops;
            encore_jwt_require  level 3;
            encore_jwt_require  team;
            proxy_pass          http://be;
        }
        location /inherit/ {
            encore_jwt          required;
            encore_jwt_require  role admin;
            proxy_pass          http://be;

            # a level with its own requirement replaces the inherited ones
            location /inherit/replaced/ {
                encore_jwt_require  tier gold;
                proxy_pass          http://be;
            }
        }

        encore_routes {
            GET  "/things/{thing_id}/parts/{part}"  parts_get  be  public;
            GET  "/things/{thing_id}"               thing_get  be  user;
        }
        location /things/ {
            encore_route      on;
            encore_jwt        optional;
            proxy_set_header  X-Route       $encore_route;
            proxy_set_header  X-Param-Thing $encore_param_thing_id;
            proxy_set_header  X-Param-Part  $encore_param_part;
            proxy_pass        http://$encore_upstream;
        }
    }
"""


class Echo(http.server.BaseHTTPRequestHandler):
    """The stand-in worker: what it received, as JSON."""

    protocol_version = "HTTP/1.1"
    FIELDS = {"id": "X-Encore-User-Id", "role": "X-Encore-User-Role",
              "name": "X-Encore-User-Name", "route": "X-Route",
              "thing": "X-Param-Thing", "part": "X-Param-Part",
              "injected": "X-Injected"}

    def do_GET(self):
        seen = {k: self.headers.get(h) for k, h in self.FIELDS.items()}
        seen["uri"] = self.path
        # header values as the bytes nginx sent (http.server decodes latin-1)
        seen = {k: v.encode("latin-1").decode("utf-8") if v else v
                for k, v in seen.items()}
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def pedge(private_nginx, tmp_path):
    keys = {alg: new_key(alg) for alg in ALGS}
    kids = {alg: "%s-key" % alg.lower() for alg in ALGS}
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(a, keys[a], kids[a]) for a in ALGS]}))
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    n = private_nginx(EDGE_CONF % {"keys": jwks, "be": backend.server_address[1]})

    class Edge:
        nginx = n

        @staticmethod
        def token(alg="ES256", **claims):
            return make_token(alg, keys[alg], kids[alg], **claims)

        @staticmethod
        def get(path, tok=None, **kw):
            headers = dict(kw.pop("headers", {}))
            if tok is not None:
                headers["Authorization"] = "Bearer " + tok
            return requests.get(n.url(path), headers=headers, **kw)

    yield Edge
    backend.shutdown()
    backend.server_close()
    assert n.problems() == [], n.problems()


def assert_401_invalid(r, error=None):
    assert r.status_code == 401, (r.status_code, r.text)
    www = r.headers["WWW-Authenticate"]
    assert www.startswith('Bearer error="invalid_token"'), www
    if error is not None:
        assert r.headers["X-Jwt-Error"] == error, r.headers
    assert '"id"' not in r.text


def assert_403_scope(r):
    assert r.status_code == 403, (r.status_code, r.text)
    www = r.headers["WWW-Authenticate"]
    assert www.startswith('Bearer error="insufficient_scope"'), www
    assert '"id"' not in r.text


# ---- algorithms ------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ALGS)
def test_each_documented_algorithm_verifies_and_forwards_identity(pedge, alg):
    tok, claims = pedge.token(alg)
    r = pedge.get("/any/x", tok)
    assert r.status_code == 200, (r.status_code, r.text, r.headers)
    seen = r.json()
    assert (seen["id"], seen["role"], seen["name"]) == (
        claims["sub"], "user", claims["name"])


@pytest.mark.parametrize("alg", ALGS)
def test_each_algorithm_refuses_another_key_and_a_changed_signature(pedge, alg):
    # the same kid and alg, signed with another key of that type
    tok, _ = make_token(alg, new_key(alg), "%s-key" % alg.lower())
    assert_401_invalid(pedge.get("/any/x", tok), "invalid signature")
    good, _ = pedge.token(alg)
    head, payload, sig = good.split(".")
    raw = bytearray(jf.b64u_decode(sig))
    raw[len(raw) // 2] ^= 0x01
    assert_401_invalid(pedge.get("/any/x", "%s.%s.%s" % (head, payload, jf.b64u(bytes(raw)))),
                       "invalid signature")
    # and the claims changed under a valid signature
    other = jf.segment(dict(jf.decode_part(good, 1), role="admin"))
    assert_401_invalid(pedge.get("/any/x", "%s.%s.%s" % (head, other, sig)),
                       "invalid signature")


@pytest.mark.parametrize("alg", ("RS256", "EdDSA", "HS256"))
def test_location_allow_list_refuses_the_other_algorithms(pedge, alg):
    tok, _ = pedge.token(alg)
    assert pedge.get("/any/x", tok).status_code == 200
    assert_401_invalid(pedge.get("/es256-only/x", tok))
    es, _ = pedge.token("ES256")
    assert pedge.get("/es256-only/x", es).status_code == 200


def test_hs256_keyed_with_the_rsa_public_key_is_refused(pedge):
    # the classic confusion, against a set that has an oct key as well:
    # the RSA key's kid with alg HS256 selects no key
    n = pedge.nginx
    jwks = json.loads(open(n.dir / "jwks.json").read())
    rsa_jwk = [k for k in jwks["keys"] if k["kty"] == "RSA"][0]
    secret = json.dumps(rsa_jwk, separators=(",", ":")).encode()
    tok, _ = make_token("HS256", secret, rsa_jwk["kid"])
    assert_401_invalid(pedge.get("/any/x", tok))


# ---- encore_jwt_cache ------------------------------------------------------------------

def test_cache_on_misses_then_hits_and_cache_off_never_uses_it(pedge):
    tok, claims = pedge.token("RS256")
    first = pedge.get("/any/x", tok)
    assert first.status_code == 200 and first.headers["X-Jwt-Cache"] == "miss"
    second = pedge.get("/any/x", tok)
    assert second.status_code == 200 and second.headers["X-Jwt-Cache"] == "hit"
    # the same, now cached, token where the cache is off: verified again
    for _ in range(2):
        r = pedge.get("/nocache/x", tok)
        assert r.status_code == 200, r.text
        assert r.headers["X-Jwt-Cache"] == "off"
        assert r.json()["id"] == claims["sub"]
    # and a bad signature there is refused, checked without the cache
    head, payload, sig = tok.split(".")
    bad = "%s.%s.%s" % (head, payload, sig[:-2] + ("AA" if sig[-2:] != "AA" else "BA"))
    r = pedge.get("/nocache/x", bad)
    assert_401_invalid(r, "invalid signature")
    assert r.headers["X-Jwt-Cache"] == "off"


def test_cache_off_still_checks_the_claims(pedge):
    tok, _ = pedge.token("EdDSA", exp=int(time.time()) - 5)
    r = pedge.get("/nocache/x", tok)
    assert_401_invalid(r, "token expired")


# ---- encore_jwt_require ----------------------------------------------------------------

@pytest.mark.parametrize("role, ok", [("admin", True), ("editor", True), ("user", False),
                                      ("Admin", False), (None, False), (["admin"], True),
                                      (["user", "editor"], True), (["user"], False)],
                         ids=["admin", "editor", "user", "case", "missing", "array",
                              "array-second", "array-other"])
def test_require_role_values(pedge, role, ok):
    tok, claims = pedge.token("ES256", role=role)
    # twice: the second answer comes from the verified-token cache, and the
    # requirement is checked on a hit as well
    for cached in ("miss", "hit"):
        r = pedge.get("/admin/x", tok)
        assert r.headers["X-Jwt-Cache"] == cached, r.headers
        if ok:
            assert r.status_code == 200, (r.status_code, r.text)
            assert r.json()["id"] == claims["sub"]
        else:
            assert_403_scope(r)


def test_require_cached_elsewhere_is_still_required(pedge):
    tok, _ = pedge.token("HS256", role="user")
    assert pedge.get("/any/x", tok).status_code == 200
    assert_403_scope(pedge.get("/admin/x", tok))


@pytest.mark.parametrize("claims, ok", [
    ({"groups": ["dev", "ops"], "level": 3, "team": "a"}, True),
    ({"groups": "ops", "level": 3, "team": ""}, True),
    ({"groups": ["dev"], "level": 3, "team": "a"}, False),
    ({"groups": ["ops"], "level": 4, "team": "a"}, False),
    ({"groups": ["ops"], "level": "3x", "team": "a"}, False),
    ({"groups": ["ops"], "level": 3, "team": None}, False),
    ({"groups": None, "level": 3, "team": "a"}, False),
], ids=["all", "string-claim", "group-missing", "level-other", "level-text",
        "team-missing", "groups-missing"])
def test_several_requirements_must_all_hold(pedge, claims, ok):
    tok, _ = pedge.token("EdDSA", **claims)
    r = pedge.get("/ops/x", tok)
    if ok:
        assert r.status_code == 200, (r.status_code, r.text)
    else:
        assert_403_scope(r)


def test_require_of_a_level_replaces_the_inherited_ones(pedge):
    gold_user, _ = pedge.token("ES256", role="user", tier="gold")
    admin, _ = pedge.token("ES256", role="admin")
    assert_403_scope(pedge.get("/inherit/x", gold_user))
    assert pedge.get("/inherit/x", admin).status_code == 200
    assert pedge.get("/inherit/replaced/x", gold_user).status_code == 200
    assert_403_scope(pedge.get("/inherit/replaced/x", admin))


def test_require_without_a_token_is_401_not_403(pedge):
    r = pedge.get("/admin/x")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"


# ---- $encore_param_* -------------------------------------------------------------------

@pytest.mark.parametrize("path, thing, part", [
    ("/things/abc/parts/7", "abc", "7"),
    ("/things/a%2Fb/parts/x%20y", "a/b", "x y"),
    ("/things/%C3%A9t%C3%A9/parts/%25", "\u00e9t\u00e9", "%"),
], ids=["plain", "encoded-slash-and-space", "utf8-and-percent"])
def test_param_variables_are_the_decoded_segments(pedge, path, thing, part):
    r = pedge.get(path)
    assert r.status_code == 200, (r.status_code, r.text)
    seen = json.loads(r.content.decode("utf-8"))
    assert (seen["route"], seen["thing"], seen["part"]) == ("parts_get", thing, part)
    # the worker gets the request line's path as it was sent
    assert seen["uri"] == path


def test_param_variable_of_another_route(pedge):
    tok, claims = pedge.token("ES256")
    r = pedge.get("/things/t1", tok)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert (seen["route"], seen["thing"], seen["part"], seen["id"]) == (
        "thing_get", "t1", None, claims["sub"])


@pytest.mark.parametrize("evil", ["a%0D%0AX-Injected:%201", "a%0AX-Injected:%201",
                                  "a%09b", "a%7Fb"], ids=["crlf", "lf", "tab", "del"])
def test_param_with_control_characters_is_empty(pedge, evil):
    # Regression: the decoded value went into proxy_set_header as it was,
    # so %0D%0A split the header and added one of the client's choosing
    r = pedge.get("/things/%s/parts/ok" % evil)
    assert r.status_code == 200, (r.status_code, r.text)
    seen = r.json()
    assert (seen["thing"], seen["part"], seen["injected"]) == (None, "ok", None), seen
    assert seen["uri"] == "/things/%s/parts/ok" % evil
