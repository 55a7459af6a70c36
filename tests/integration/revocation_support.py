"""Revocation through the real edge: polling a token until the edge
refuses it, a second edge (nginx with its own configuration and zone,
and its own agent) sharing nothing with the first but Kafka."""
import os
import shutil
import subprocess
import time

import requests

from conftest import EDGE, ROOT, RUN_DIR, free_port, wait_until
from edge_agent_support import Agent

# the edge has the revocation zone (the jwt module's side): without it
# there is nothing to test through nginx
EDGE_REVOKES = "encore_jwt_revocation_zone" in (ROOT / "conf" / "jwt.conf").read_text()
NGINX_BIN = os.environ.get("ENCORE_NGINX_BIN", "/usr/sbin/nginx")


def bearer(token):
    return {"Authorization": "Bearer " + token}


def me(token, base=EDGE):
    return requests.get(base + "/api/v1/auth/me", headers=bearer(token), timeout=5)


def revoked(r, cause):
    """Whether r is the edge's refusal of a revoked token: 401,
    problem+json naming the cause, WWW-Authenticate invalid_token.  A 401
    of the worker's own (the auth worker refuses a deleted or disabled
    account by itself once it committed) is not."""
    if r.status_code != 401 or "the access token was revoked" not in r.text:
        return False
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    assert "revoked (%s)" % cause in r.json()["detail"], r.json()
    www = r.headers.get("WWW-Authenticate", "")
    assert 'error="invalid_token"' in www and "token revoked" in www, r.headers
    return True


def until_refused(token, cause, since, base=EDGE, timeout=30.0):
    """Polls GET /auth/me with token until the edge refuses it as revoked
    for cause: the seconds from `since` (the cause's commit: its answer)
    to the first refusal.  The timeout is a bound for a hung test, not
    the figure measured."""
    deadline = time.time() + timeout
    while True:
        r = me(token, base)
        t = time.time()
        if revoked(r, cause):
            return t - since
        # before the edge knows: the worker answers (200, or its own 401
        # for an account it no longer serves)
        assert r.status_code in (200, 401), (r.status_code, r.text)
        if t > deadline:
            raise AssertionError("token of %s not refused within %ss" % (cause, timeout))
        time.sleep(0.002)


def percentile(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


class SecondEdge:
    """Another nginx on ENCORE_EDGE_PORT + 1 from the stack's rendered
    configuration: its own pid, logs, temporary files and shared memory
    (the revocation zone among them), the same workers; and its own
    agent.  It shares the workers and Kafka with the first, nothing
    else."""

    def __init__(self):
        first = int(os.environ.get("ENCORE_EDGE_PORT", "18080"))
        self.port = first + 1
        self.base = "http://127.0.0.1:%d" % self.port
        self.dir = RUN_DIR / "edge2"
        shutil.rmtree(self.dir, ignore_errors=True)
        conf = self.dir / "conf"
        conf.mkdir(parents=True)
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
            (self.dir / "nginx" / d).mkdir(parents=True)
        run = str(RUN_DIR)
        # the stack's https listener (conf/tls.d/, the edge's port + 3):
        # a copy of its own on a port of its own
        (conf / "tls.d").mkdir()
        for f in (RUN_DIR / "conf" / "tls.d").glob("*.conf"):
            (conf / "tls.d" / f.name).write_text(f.read_text().replace(
                "127.0.0.1:%d " % (first + 3), "127.0.0.1:%d " % free_port()))
        for f in (RUN_DIR / "conf").glob("*.conf"):
            text = f.read_text()
            text = text.replace("127.0.0.1:%d;" % first, "127.0.0.1:%d;" % self.port)
            text = text.replace(run + "/conf/tls.d/", str(conf / "tls.d") + "/")
            text = text.replace(run + "/run/nginx.pid", str(self.dir / "nginx.pid"))
            text = text.replace(run + "/log/nginx-error.log", str(self.dir / "error.log"))
            text = text.replace(run + "/log/nginx-access.log", str(self.dir / "access.log"))
            text = text.replace(run + "/nginx/", str(self.dir / "nginx") + "/")
            (conf / f.name).write_text(text)
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", os.environ.get("ENCORE_NGINX_USER", "www-data"),
                            str(self.dir / "nginx")], check=True)
        self.nginx("-t", "-q")
        self.nginx()
        wait_until(lambda: self._healthy(), timeout=20, what="second edge")
        self.agent = Agent(self.base + "/internal/revocations", name="edge-agent-2")

    def nginx(self, *args):
        # `nginx -t` and `-s` exit without freeing what they parsed, by
        # design: under an ASan nginx that is no leak check (auto/stack)
        env = dict(os.environ)
        if args:
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        r = subprocess.run([NGINX_BIN, "-p", str(self.dir) + "/",
                            "-c", str(self.dir / "conf" / "nginx.conf"),
                            "-e", str(self.dir / "error.log"), *args],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr

    def _healthy(self):
        try:
            return requests.get(self.base + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def ready(self):
        try:
            return requests.get(self.base + "/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        self.agent.stop()
        pid = self.dir / "nginx.pid"
        if pid.exists():
            self.nginx("-s", "quit")
            deadline = time.time() + 20
            while pid.exists() and time.time() < deadline:
                time.sleep(0.1)
