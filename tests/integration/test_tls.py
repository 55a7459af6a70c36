"""The edge's https listener (conf/tls.conf, enabled by auto/stack with the
self-signed certificate it makes in the run directory's tls/): TLS 1.2
and 1.3 on Mozilla's intermediate profile, HTTP/2 by ALPN, HSTS on https
only, the Secure cookie flag and the Origin check on https, and the jwt
module's verdict cache and the views the same over HTTP/2.

Requests go through curl (--http2, with nghttp2) and the handshakes
through `openssl s_client`, both real clients of the real edge."""
import os
import re
import subprocess
import tempfile
import uuid

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from conftest import EDGE, RUN_DIR, register, url, wait_until
from test_metrics import delta, parse, scrape, settled_scrape
from views_support import assert_complete

EDGE_PORT = int(EDGE.rsplit(":", 1)[1])
HTTPS_PORT = int(os.environ.get("ENCORE_HTTPS_PORT", EDGE_PORT + 3))
HTTPS = "https://127.0.0.1:%d" % HTTPS_PORT
CERT = str(RUN_DIR / "tls" / "edge.crt")
HSTS = "max-age=63072000"
# Mozilla intermediate (guidelines v5.7), as conf/tls.conf lists them
INTERMEDIATE = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}


class Request:
    def __init__(self, method):
        self.method = method


class Answer:
    """curl's answer in the shape of a requests.Response, for the
    helpers that take one."""

    def __init__(self, method, version, status, headers, content):
        self.request = Request(method)
        self.http_version = version
        self.status_code = status
        self.headers = CaseInsensitiveDict()
        self.header_list = headers
        for k, v in headers:
            self.headers[k] = v if k not in self.headers else self.headers[k] + ", " + v
        self.content = content
        self.text = content.decode("utf-8", "replace")

    def json(self):
        import json
        return json.loads(self.content)

    def cookies(self):
        return [v for k, v in self.header_list if k.lower() == "set-cookie"]


def curl(method, target, headers=None, json_body=None, http2=True):
    """One request by curl: over https with HTTP/2 by ALPN (http2),
    else HTTP/1.1; target is a path of the https listener or a URL."""
    full = target if "://" in target else HTTPS + target
    with tempfile.TemporaryDirectory() as tmp:
        hdr, body = os.path.join(tmp, "h"), os.path.join(tmp, "b")
        cmd = ["curl", "-sS", "--max-time", "20", "--cacert", CERT, "-X", method,
               "-D", hdr, "-o", body, "-w", "%{http_version} %{http_code}",
               "--http2" if http2 else "--http1.1"]
        if method == "HEAD":
            cmd[cmd.index("-X"):cmd.index("-X") + 2] = ["-I"]
        for k, v in (headers or {}).items():
            cmd += ["-H", "%s: %s" % (k, v)]
        if json_body is not None:
            import json
            cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(json_body)]
        out = subprocess.run(cmd + [full], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, (cmd, out.stderr)
        version, status = out.stdout.split()
        lines = open(hdr, "rb").read().decode("latin-1").split("\r\n")
        # the last answer's header block (curl writes every one it gets)
        start = max(i for i, l in enumerate(lines) if l.startswith("HTTP/"))
        got = [tuple(s.strip() for s in l.split(":", 1))
               for l in lines[start + 1:] if ":" in l]
        content = open(body, "rb").read() if os.path.exists(body) else b""
    return Answer(method, version, int(status), got, content)


def s_client(*args):
    """A handshake with the https listener; (ok, its output)."""
    out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % HTTPS_PORT,
                          "-servername", "localhost", "-CAfile", CERT, *args],
                         input=b"", capture_output=True, timeout=30)
    # (an h2 server speaks first: its SETTINGS frame lands in stdout)
    text = (out.stdout + out.stderr).decode("utf-8", "replace")
    return out.returncode == 0 and "Verify return code: 0 (ok)" in text, text


# ---- TLS and HTTP/2 ----------------------------------------------------------------------

def test_certificate_is_made_with_a_private_key():
    key = RUN_DIR / "tls" / "edge.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    out = subprocess.run(["openssl", "x509", "-in", CERT, "-noout", "-ext", "subjectAltName"],
                         capture_output=True, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in out and "DNS:localhost" in out, out


def test_http2_is_negotiated_by_alpn():
    r = curl("GET", "/healthz")
    assert r.http_version == "2" and r.status_code == 200, (r.http_version, r.status_code)
    ok, text = s_client("-alpn", "h2,http/1.1")
    assert ok and "ALPN protocol: h2" in text, text
    # a client that offers HTTP/1.1 only is served it
    r = curl("GET", "/healthz", http2=False)
    assert r.http_version == "1.1" and r.status_code == 200


def test_plain_http_stays_http1_without_tls():
    r = curl("GET", url("/healthz"))
    assert r.http_version == "1.1" and r.status_code == 200


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_tls_1_3_and_1_2_are_accepted(version):
    ok, text = s_client(version)
    assert ok, text
    m = re.search(r"New, (TLSv1\.[23]), Cipher is (\S+)", text)
    assert m, text
    assert m.group(1) == "TLSv1." + version[-1], text
    if version == "-tls1_2":
        assert m.group(2) in INTERMEDIATE, m.group(2)


@pytest.mark.parametrize("version", ["-tls1_1", "-tls1"])
def test_tls_1_1_and_older_are_refused(version):
    # the client's own floor lowered (SECLEVEL=0), so that the refusal
    # is the server's: a protocol version alert
    ok, text = s_client(version, "-cipher", "DEFAULT@SECLEVEL=0")
    assert not ok, text
    assert "alert protocol version" in text or "unsupported protocol" in text, text


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256",
                                    "ECDHE-ECDSA-AES256-SHA384"])
def test_tls_1_2_ciphers_outside_the_profile_are_refused(cipher):
    # CBC suites: OpenSSL's default list has them, the intermediate one not
    ok, text = s_client("-tls1_2", "-cipher", cipher)
    assert not ok, text
    ok, text = s_client("-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305")
    assert ok, text


def test_tls_1_2_sessions_resume_from_the_cache_without_tickets():
    ok, text = s_client("-tls1_2", "-reconnect")
    assert ok, text
    assert "Reused, TLSv1.2" in text, text
    assert "TLS session ticket:" not in text, text


def test_hsts_on_https_only():
    for path, status in (("/healthz", 200), ("/api/v1/nowhere", 404),
                         ("/", 200)):
        r = curl("GET", path)
        assert r.status_code == status, (path, r.status_code)
        assert r.headers.get("Strict-Transport-Security") == HSTS, (path, r.headers)
        r = requests.get(url(path))
        assert r.status_code == status, (path, r.status_code)
        assert "Strict-Transport-Security" not in r.headers, (path, r.headers)


# ---- cookies and Origin over https -----------------------------------------------------------

def cookie_attrs(r, name):
    c = [c for c in r.cookies() if c.startswith(name + "=")]
    assert len(c) == 1, r.cookies()
    return [a.strip().lower() for a in c[0].split(";")[1:]], c[0].split(";")[0]


def https_login():
    user, pw = register()
    r = curl("POST", "/api/v1/auth/login", json_body={"login": user["username"], "password": pw})
    assert r.status_code == 200, r.text
    return user, r


def test_login_over_https_sets_secure_cookies():
    _, r = https_login()
    for name in ("encore_access", "encore_refresh"):
        attrs, _ = cookie_attrs(r, name)
        assert "secure" in attrs and "httponly" in attrs, (name, attrs)
    # the same login over plain http: a Secure cookie would be dropped
    user, pw = register()
    r = requests.post(url("/api/v1/auth/login"), json={"login": user["username"], "password": pw})
    assert r.status_code == 200
    for c in r.raw.headers.getlist("Set-Cookie"):
        assert "secure" not in [a.strip().lower() for a in c.split(";")[1:]], c


def test_a_client_sent_forwarded_proto_is_not_believed():
    user, pw = register()
    r = requests.post(url("/api/v1/auth/login"), json={"login": user["username"], "password": pw},
                      headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 200
    for c in r.raw.headers.getlist("Set-Cookie"):
        assert "secure" not in c.lower(), c


def test_origin_check_on_https_for_cookie_unsafe_methods():
    user, r = https_login()
    _, access = cookie_attrs(r, "encore_access")
    patch = {"bio": "over https %s" % uuid.uuid4().hex[:6]}
    # our https origin passes (HTTP/2, :authority as the host)
    ok = curl("PATCH", "/api/v1/users/me", json_body=patch,
              headers={"Cookie": access, "Origin": HTTPS})
    assert ok.status_code == 200, ok.text
    assert ok.json()["bio"] == patch["bio"]
    # the same host over plain http, or the plain listener's origin, is
    # refused on https: a page injected into plain http must not act
    for origin in ("http://127.0.0.1:%d" % HTTPS_PORT, "http://127.0.0.1:%d" % EDGE_PORT,
                   "https://127.0.0.1:%d" % EDGE_PORT, "https://evil.example", "null"):
        r = curl("PATCH", "/api/v1/users/me", json_body={"bio": "csrf"},
                 headers={"Cookie": access, "Origin": origin})
        assert r.status_code == 403, (origin, r.status_code, r.text)
    r = curl("PATCH", "/api/v1/users/me", json_body={"bio": "csrf"}, headers={"Cookie": access})
    assert r.status_code == 403
    # and on plain http the https origin is not ours
    r = requests.patch(url("/api/v1/users/me"), json={"bio": "csrf"},
                       headers={"Cookie": access, "Origin": HTTPS})
    assert r.status_code == 403, r.text
    r = curl("GET", "/api/v1/auth/me", headers={"Cookie": access})
    assert r.status_code == 200 and r.json()["bio"] == patch["bio"], r.text


def test_refresh_cookie_over_https_needs_the_https_origin():
    # the auth worker's own check: the edge's verdict on the Origin
    # (X-Encore-Origin-Allowed, from its configured origins), never the Host
    _, r = https_login()
    _, refresh = cookie_attrs(r, "encore_refresh")
    for origin in ("http://127.0.0.1:%d" % HTTPS_PORT, "https://evil.example"):
        bad = curl("POST", "/api/v1/auth/refresh", json_body={},
                   headers={"Cookie": refresh, "Origin": origin})
        assert bad.status_code == 403, (origin, bad.status_code, bad.text)
    # a forged Host (HTTP/2's :authority, HTTP/1.1's Host) with its own
    # Origin, and a client's copy of the verdict
    for path in ("/api/v1/auth/refresh", "/api/v1/auth/logout"):
        for http2 in (True, False):
            for host in ("evil.example", "evil.example:%d" % HTTPS_PORT):
                bad = curl("POST", path, json_body={}, http2=http2,
                           headers={"Cookie": refresh, "Host": host,
                                    "Origin": "https://" + host,
                                    "X-Encore-Origin-Allowed": "1"})
                assert bad.status_code == 403, (path, http2, host, bad.status_code, bad.text)
    good = curl("POST", "/api/v1/auth/refresh", json_body={},
                headers={"Cookie": refresh, "Origin": HTTPS, "Host": "evil.example"})
    assert good.status_code == 200, good.text
    attrs, _ = cookie_attrs(good, "encore_refresh")
    assert "secure" in attrs, attrs


# ---- the jwt verdict cache and the views over HTTP/2 ----------------------------------------------

def test_jwt_verdict_cache_over_http2():
    user, pw = register()
    r = curl("POST", "/api/v1/auth/login", json_body={"login": user["username"], "password": pw})
    token = r.json()["access_token"]
    before = parse(scrape())
    n = 4
    for _ in range(n):
        r = curl("GET", "/api/v1/auth/me", headers={"Authorization": "Bearer " + token})
        assert r.http_version == "2" and r.status_code == 200, r.text
        assert r.json()["id"] == user["id"]
    after = settled_scrape(before, lambda a: sum(delta(
        before, a, "encore_jwt_verifications_total", outcome="valid").values()) >= n)
    assert sum(delta(before, after, "encore_jwt_verifications_total",
                     outcome="valid").values()) == n
    # a fresh token: the first check misses the cache, the others hit
    assert sum(delta(before, after, "encore_jwt_cache_requests_total",
                     result="miss").values()) == 1
    assert sum(delta(before, after, "encore_jwt_cache_requests_total",
                     result="hit").values()) == n - 1
    # a bad token is refused over HTTP/2 as over HTTP/1.1
    r = curl("GET", "/api/v1/auth/me", headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401 and r.headers["Content-Type"].startswith("application/problem+json")


def test_views_over_http2_etag_and_304():
    path = "/api/v1/views/home"

    def same_view():
        plain = requests.get(url(path))
        r = curl("GET", path)
        return (r if r.status_code == 200 and plain.status_code == 200
                and r.headers.get("ETag") == plain.headers.get("ETag")
                and r.json() == plain.json() else None)
    # anonymous parts may be cached for a few seconds: equal once settled
    r = wait_until(same_view, timeout=30, what="the same home view over h2 and http/1.1")
    assert r.http_version == "2"
    assert_complete(r)
    etag = r.headers["ETag"]
    again = curl("GET", path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"", (again.status_code, again.text)
    assert again.headers.get("ETag") == etag
    assert again.headers.get("Strict-Transport-Security") == HSTS
    head = curl("HEAD", path)
    assert head.status_code == 200 and head.headers.get("ETag") == etag
