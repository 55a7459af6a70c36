"""The edge's Prometheus metrics (ngx_modules/metrics) and /metrics/<worker>.

Every scrape is parsed strictly (the exposition format 0.0.4: HELP and
TYPE before a family's samples, one block per family, valid names, label
escapes, histograms cumulative with +Inf equal to _count) and also checked
by `promtool check metrics`. Counts are compared scrape to scrape: the
suite shares the stack with other tests, so only deltas are asserted.
"""
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import (EDGE, ROOT, RUN_DIR, login, nginx_log_problems, pid_of,
                      register, stack, url, wait_gone, wait_until, worker_request)

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
MONITORING = ROOT / "infrastructure" / "monitoring"


def parse_labels(text, line):
    """{a="x",b="y\\"z"} → dict, strictly; returns (labels, rest)."""
    try:
        return _parse_labels(text, line)
    except IndexError:
        raise AssertionError("unterminated labels in %r" % line)


def _parse_labels(text, line):
    assert text[0] == "{", line
    labels, i = {}, 1
    while text[i] != "}":
        m = re.match(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", text[i:])
        assert m, "bad label in %r" % line
        name, i, value = m.group(1), i + m.end(), []
        while text[i] != '"':
            if text[i] == "\\":
                esc = text[i + 1]
                assert esc in '\\"n', "bad escape in %r" % line
                value.append("\n" if esc == "n" else esc)
                i += 2
            else:
                assert text[i] != "\n", line
                value.append(text[i])
                i += 1
        i += 1
        assert name not in labels, "duplicate label in %r" % line
        labels[name] = "".join(value)
        if text[i] == ",":
            i += 1
    return labels, text[i + 1:]


def parse(text):
    """Parse an exposition strictly.

    Returns {family: {"type", "help", "samples": {(name, labels): value}}}
    where labels is a sorted tuple of (name, value).
    """
    assert text.endswith("\n"), "exposition must end with a newline"
    families, current, seen_samples = {}, None, set()
    for line in text.split("\n")[:-1]:
        assert line, "empty line in exposition"
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, parts = line[2:6], line[7:].split(" ", 1)
            name, rest = parts[0], parts[1] if len(parts) > 1 else ""
            assert NAME.match(name), line
            fam = families.setdefault(name, {"type": None, "help": None, "samples": {}})
            if current != name:
                assert not fam["samples"], "family %s split in two blocks" % name
                current = name
            if kind == "TYPE":
                assert fam["type"] is None, "second TYPE for %s" % name
                assert rest in TYPES, line
                assert not fam["samples"], "TYPE after samples of %s" % name
                fam["type"] = rest
            else:
                assert fam["help"] is None, "second HELP for %s" % name
                fam["help"] = rest
            continue
        assert not line.startswith("#"), line
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
        assert m, line
        name, rest = m.group(1), line[m.end():]
        labels = {}
        if rest.startswith("{"):
            labels, rest = parse_labels(rest, line)
        assert rest.startswith(" "), line
        fields = rest[1:].split(" ")
        assert len(fields) in (1, 2), line
        value = float(fields[0])          # also "+Inf", "NaN"
        fam_name = name
        if current and name != current:
            for suffix in ("_bucket", "_sum", "_count"):
                if name == current + suffix:
                    fam_name = current
        assert fam_name == current, "sample %s outside its family's block" % name
        fam = families[fam_name]
        assert fam["type"] is not None, "sample %s before its TYPE" % name
        if fam["type"] == "histogram":
            assert name != fam_name, "bare sample in histogram %s" % name
            if name.endswith("_bucket"):
                assert "le" in labels, line
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen_samples, "duplicate sample %r" % (key,)
        seen_samples.add(key)
        fam["samples"][key] = value
    for name, fam in families.items():
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
        if fam["type"] == "counter":
            assert all(v >= 0 for v in fam["samples"].values()), name
    return families


def check_histogram(name, samples):
    series = {}
    for (sname, labels), value in samples.items():
        base = tuple(kv for kv in labels if kv[0] != "le")
        s = series.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            le = dict(labels)["le"]
            s["buckets"].append((math.inf if le == "+Inf" else float(le), value))
        elif sname == name + "_sum":
            s["sum"] = value
        elif sname == name + "_count":
            s["count"] = value
    for base, s in series.items():
        b = sorted(s["buckets"])
        assert b and b[-1][0] == math.inf, "%s%r has no +Inf bucket" % (name, base)
        counts = [v for _, v in b]
        assert counts == sorted(counts), "%s%r buckets not cumulative" % (name, base)
        assert s["count"] == b[-1][1], "%s%r: _count != +Inf" % (name, base)
        assert s["sum"] is not None and s["sum"] >= 0, (name, base)


def scrape(path="/metrics"):
    r = requests.get(url(path), timeout=10)
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    return r.text


def promtool():
    path = shutil.which("promtool")
    assert path, "promtool is missing: auto/deps installs the Debian package prometheus"
    return path


def promtool_check_metrics(text):
    p = subprocess.run([promtool(), "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def samples(families, family, sample=None, **match):
    """Values of the samples of a family whose labels include match."""
    out = {}
    for (name, labels), value in families.get(family, {"samples": {}})["samples"].items():
        if sample and name != sample:
            continue
        d = dict(labels)
        if all(d.get(k) == v for k, v in match.items()):
            out[labels] = value
    return out


def total(families, family, sample=None, **match):
    return sum(samples(families, family, sample, **match).values())


def delta(before, after, family, sample=None, **match):
    a = samples(after, family, sample, **match)
    b = samples(before, family, sample, **match)
    return {k: v - b.get(k, 0) for k, v in a.items() if v - b.get(k, 0)}


# ---- the exposition -----------------------------------------------------------

def test_exposition_is_strictly_valid():
    text = scrape()
    fams = parse(text)
    promtool_check_metrics(text)
    for name in ("encore_http_requests_total",
                 "encore_upstream_failures_total",
                 "encore_jwt_verifications_total",
                 "encore_jwt_cache_requests_total",
                 "encore_metrics_series_overflow_total"):
        assert fams[name]["type"] == "counter", name
        assert fams[name]["help"], name
    for name in ("encore_http_request_duration_seconds",
                 "encore_upstream_response_duration_seconds"):
        assert fams[name]["type"] == "histogram", name
    for name in ("encore_metrics_series", "encore_metrics_series_max",
                 "encore_metrics_zone_used_bytes", "encore_metrics_zone_size_bytes"):
        assert fams[name]["type"] == "gauge", name
    used = total(fams, "encore_metrics_zone_used_bytes")
    size = total(fams, "encore_metrics_zone_size_bytes")
    assert 0 < used < size == 1024 * 1024
    assert 0 < total(fams, "encore_metrics_series") <= total(fams, "encore_metrics_series_max")


def test_the_parser_rejects_what_it_should():
    # the strict parser is what the other tests stand on: it must fail
    good = ("# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\"} 2\n")
    parse(good)
    bad = [
        "x_total 1\n",                                            # no TYPE
        good + "# TYPE x_total counter\n",                        # second TYPE
        good.replace('a="1"', 'a="1') ,                           # unterminated
        good.replace('a="1"', 'a="\\x"'),                         # bad escape
        good + 'x_total{a="1"} 3\n',                              # duplicate
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
        "h_sum 1\nh_count 1\n",                                   # not cumulative
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
        good.rstrip("\n"),                                        # no final newline
    ]
    for text in bad:
        with pytest.raises(AssertionError):
            parse(text)


def settled_scrape(before, done, timeout=10.0):
    """Scrape until done(after) holds (counts catch up with the requests
    just answered), then once more after a short pause so that an
    overshoot would show too."""
    deadline = time.time() + timeout
    after = parse(scrape())
    while not done(after) and time.time() < deadline:
        time.sleep(0.05)
        after = parse(scrape())
    time.sleep(0.2)
    return parse(scrape())


def test_requests_are_counted_by_route_method_and_status():
    n = 7
    before = parse(scrape())
    for _ in range(n):
        r = requests.get(url("/api/v1/auth/me"))       # no token: 401
        assert r.status_code == 401
    after = settled_scrape(before, lambda a: sum(delta(
        before, a, "encore_http_requests_total", method="GET", status="4xx").values()) >= n)

    d = delta(before, after, "encore_http_requests_total", method="GET", status="4xx")
    assert sum(d.values()) == n, d
    (labels,) = d.keys()                               # one series took all
    route = dict(labels)["route"]
    assert route and "/" not in route, "a route name, never a raw path: %r" % route
    # the histogram of that route counted the same requests
    h = delta(before, after, "encore_http_request_duration_seconds",
              "encore_http_request_duration_seconds_count", route=route)
    assert sum(h.values()) == n, h
    inf = delta(before, after, "encore_http_request_duration_seconds",
                "encore_http_request_duration_seconds_bucket", route=route, le="+Inf")
    assert sum(inf.values()) == n, inf
    # the scrapes themselves are counted under their own label, not as
    # unmatched (how many depends on how long the counts took to settle)
    m = delta(before, after, "encore_http_requests_total", route="metrics")
    assert sum(m.values()) >= 1, m
    # nothing is labelled with a path
    for (_, lbls) in after["encore_http_requests_total"]["samples"]:
        assert not dict(lbls)["route"].startswith("/"), lbls


def test_jwt_outcomes_cache_and_upstream_timings():
    base = parse(scrape())
    user, password = register()
    token = login(user["username"], password)["access_token"]
    n = 5
    # the login's own try of encore_auth is counted in its log phase, after
    # its answer: wait for register's and login's tries, or the login's
    # could land in the counts below (it did, once: 6 tries for 5)
    before = settled_scrape(base, lambda a: sum(delta(
        base, a, "encore_upstream_response_duration_seconds",
        "encore_upstream_response_duration_seconds_count",
        upstream="encore_auth").values()) >= 2)
    for _ in range(n):
        r = requests.get(url("/api/v1/auth/me"),
                         headers={"Authorization": "Bearer " + token})
        assert r.status_code == 200, r.text
    for _ in range(3):
        r = requests.get(url("/api/v1/auth/me"),
                         headers={"Authorization": "Bearer not.a.token"})
        assert r.status_code == 401
    # nginx counts in the log phase, which runs after the answer is sent:
    # the last request may still be logging in one worker while another
    # serves the scrape, so wait (briefly) for the counts to settle
    after = settled_scrape(before, lambda a: sum(delta(
        before, a, "encore_jwt_verifications_total").values()) >= n + 3)

    valid = delta(before, after, "encore_jwt_verifications_total", outcome="valid")
    assert sum(valid.values()) == n, valid
    refused = {k: v for k, v in delta(before, after, "encore_jwt_verifications_total").items()
               if dict(k)["outcome"] != "valid"}
    assert sum(refused.values()) == 3, refused
    for labels in refused:
        assert re.match(r"[a-z0-9_]+\Z", dict(labels)["outcome"]), labels

    # a fresh token: the first check misses the cache, the others hit
    assert sum(delta(before, after, "encore_jwt_cache_requests_total",
                     result="miss").values()) == 1
    assert sum(delta(before, after, "encore_jwt_cache_requests_total",
                     result="hit").values()) == n - 1

    # each answered request was one try of the auth worker's upstream
    up = delta(before, after, "encore_upstream_response_duration_seconds",
               "encore_upstream_response_duration_seconds_count", upstream="encore_auth")
    assert sum(up.values()) == n, up
    assert not delta(before, after, "encore_upstream_failures_total", upstream="encore_auth")


# ---- access -------------------------------------------------------------------------

def get_from(source, path, full=False):
    port = int(EDGE.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return (r.status, r.getheader("Content-Type"), body) if full else r.status
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/metrics", "/metrics/auth"])
def test_metrics_are_loopback_only(path):
    # 127.0.0.2 is a loopback device address too, but not an allowed one
    # (conf/ops-access.conf allows 127.0.0.1 and ::1): it stands for any
    # other client
    assert get_from("127.0.0.1", path) == 200
    status, ctype, body = get_from("127.0.0.2", path, full=True)
    assert status == 403
    # the deny answers problem+json (conf/errors.conf), not nginx's HTML page
    assert ctype.startswith("application/problem+json"), ctype
    problem = json.loads(body)
    assert problem["status"] == 403 and problem["title"] == "Forbidden"
    assert "role" not in problem["detail"], problem


def test_readyz_subrequest_location_is_internal():
    assert requests.get(url("/_readyz/auth")).status_code == 404


# ---- reload --------------------------------------------------------------------------

def nginx_workers(master=None):
    master = master or pid_of("nginx")
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)],
                         capture_output=True, text=True).stdout
    return set(out.split())


def test_counters_survive_reload():
    for _ in range(3):
        requests.get(url("/api/v1/auth/me"))
    before = parse(scrape())
    old = nginx_workers()
    assert old

    r = stack("reload", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    # the new workers take over; the old ones leave when idle
    deadline = time.time() + 20
    while time.time() < deadline and (nginx_workers() & old):
        time.sleep(0.2)
    assert not (nginx_workers() & old), "old nginx workers still running"

    after = parse(scrape())
    for labels, value in samples(before, "encore_http_requests_total").items():
        now = samples(after, "encore_http_requests_total").get(labels)
        assert now is not None and now >= value, (labels, value, now)
    # exactly the one scrape in between was added to the metrics route
    m = delta(before, after, "encore_http_requests_total", route="metrics")
    assert sum(m.values()) == 1, m
    assert total(after, "encore_metrics_zone_size_bytes") == \
        total(before, "encore_metrics_zone_size_bytes")


# ---- workers' own metrics --------------------------------------------------------------

@pytest.mark.parametrize("worker", ["auth", "probe"])
def test_worker_metrics_through_the_edge(worker):
    if worker not in os.environ.get("ENCORE_WORKERS", "auth probe").split():
        pytest.skip("%s is not running in this stack" % worker)
    text = scrape("/metrics/" + worker)
    fams = parse(text)
    promtool_check_metrics(text)
    assert samples(fams, "encore_worker_info", worker=worker) == \
        {(("worker", worker),): 1.0}
    # the edge counts the proxying under the worker's upstream name
    after = parse(scrape())
    assert total(after, "encore_upstream_response_duration_seconds",
                 "encore_upstream_response_duration_seconds_count",
                 upstream="encore_" + worker) >= 1


def test_consumer_lag_and_batch_size():
    # a consuming worker (probe consumes what it publishes) exports the
    # lag per partition and the events per transaction, valid for promtool
    if "probe" not in os.environ.get("ENCORE_WORKERS", "auth probe").split():
        pytest.skip("probe is not running in this stack")
    r = worker_request("probe", "POST", "/writes", body={"value": "lag-%d" % time.time_ns()})
    assert r.status_code == 201, r.text

    def exported():
        fams = parse(scrape("/metrics/probe"))
        lag = samples(fams, "encore_consumer_lag", topic="encore.probe.writes")
        if not lag or total(fams, "encore_consumer_batch_size",
                            "encore_consumer_batch_size_count") < 1:
            return None
        return fams, lag
    fams, lag = wait_until(exported, timeout=60, what="the consumer's lag and batch size")
    assert fams["encore_consumer_lag"]["type"] == "gauge"
    assert fams["encore_consumer_batch_size"]["type"] == "histogram"
    assert all(dict(k)["partition"].isdigit() and v >= 0 for k, v in lag.items()), lag
    # every transaction held at least one event: le="+Inf" counts them all
    count = total(fams, "encore_consumer_batch_size", "encore_consumer_batch_size_count")
    assert total(fams, "encore_consumer_batch_size", "encore_consumer_batch_size_bucket",
                 le="+Inf") == count
    assert total(fams, "encore_consumer_batch_size", "encore_consumer_batch_size_sum") >= count
    promtool_check_metrics(scrape("/metrics/probe"))


@pytest.mark.parametrize("route", ["jwks", "users_patch"])
def test_worker_and_edge_label_a_route_alike(route):
    # Regression: the auth worker labelled these two routes auth_jwks and
    # users_admin_patch while the edge said jwks and users_patch
    # (conf/routes.conf), so one request was two routes in the metrics.
    # tests/unit/api/test_worker_routes.py compares the tables; this is
    # the running stack
    if route == "jwks":
        send = lambda: requests.get(url("/.well-known/jwks.json"))
    else:
        admin = login("admin", os.environ.get("ENCORE_ADMIN_PASSWORD",
                                              "encore-admin"))["access_token"]
        user, _ = register()
        send = lambda: requests.patch(url("/api/v1/users/" + user["id"]), json={},
                                      headers={"Authorization": "Bearer " + admin})
    edge_before = parse(scrape())
    worker_before = parse(scrape("/metrics/auth"))
    r = send()
    assert r.status_code not in (401, 403, 404, 405), (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/"), r.headers
    edge_after = settled_scrape(edge_before, lambda a: sum(delta(
        edge_before, a, "encore_http_requests_total", route=route).values()) >= 1)
    worker_after = parse(scrape("/metrics/auth"))
    assert sum(delta(edge_before, edge_after, "encore_http_requests_total",
                     route=route).values()) == 1
    assert sum(delta(worker_before, worker_after, "encore_http_requests_total",
                     route=route).values()) == 1, \
        samples(worker_after, "encore_http_requests_total")


def all_label_values(families):
    return {v for fam in families.values() for (_, labels) in fam["samples"]
            for (_, v) in labels}


def test_unknown_worker_metrics_is_404_and_makes_no_series():
    # Regression: /metrics/<name> took the upstream label from the URL
    # (encore_$1), so any name asked for became new series until
    # max_series was full, and the zone keeps them across reloads
    from conftest import assert_problem

    name = "nosuch%s" % os.urandom(4).hex()
    for path in ("/metrics/" + name, "/metrics/" + name + "x", "/metrics/",
                 "/metrics/auth/x", "/metrics/authx", "/metrics/AUTH"):
        r = requests.get(url(path))
        assert_problem(r, 404)
        assert "encore_" + name not in r.text
    after = parse(scrape())
    values = all_label_values(after)
    assert not [v for v in values if name in v], values
    # the others still answer (from loopback only: test_metrics_are_loopback_only)
    assert get_from("127.0.0.1", "/metrics/auth") == 200
    assert get_from("127.0.0.2", "/metrics/" + name) == 404


def test_error_pages_keep_the_method():
    # Regression: an error page's redirect makes the request a GET, so a
    # DELETE refused with 401 was counted with method="GET" and logged as
    # "GET /_error/401"
    from test_routes import access_log_entry

    n = 3
    post = "/api/v1/posts/%s" % os.urandom(8).hex()
    before = parse(scrape())
    rids = []
    for _ in range(n):
        r = requests.delete(url(post + "?x=1"))        # a user route, no token
        assert r.status_code == 401, r.text
        rids.append(r.headers["X-Request-Id"])
    after = settled_scrape(before, lambda a: sum(delta(
        before, a, "encore_http_requests_total", route="posts_delete").values()) >= n)
    d = delta(before, after, "encore_http_requests_total", route="posts_delete")
    assert d == {(("method", "DELETE"), ("route", "posts_delete"), ("status", "4xx")): n}, d
    for rid in rids:
        entry = access_log_entry(rid)
        assert entry["method"] == "DELETE" and entry["uri"] == post + "?x=1", entry
        assert entry["route"] == "posts_delete" and entry["status"] == 401, entry


# ---- monitoring config ------------------------------------------------------------------

def test_prometheus_config_and_alert_rules():
    tool = promtool()
    for args in (["check", "config", str(MONITORING / "prometheus.yml")],
                 ["check", "rules", str(MONITORING / "rules" / "encore.rules.yml")],
                 ["test", "rules", str(MONITORING / "tests" / "encore.rules.test.yml")]):
        p = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, " ".join(args) + "\n" + p.stdout + p.stderr


# ---- a private nginx, for configurations the stack does not run ------------------

class PrivateNginx:
    """An nginx of its own (the stack's binary and module) under a temporary
    directory, on a free loopback port, with its own error log: tests that
    make nginx refuse a reload (an [emerg]) keep it out of the stack's log."""

    def __init__(self, tmp_path, http_conf):
        self.dir = tmp_path
        for d in ("logs", "conf", "tmp"):
            (tmp_path / d).mkdir(exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.error_log = tmp_path / "logs" / "error.log"
        self.conf = tmp_path / "conf" / "nginx.conf"
        self.bin = os.environ.get("ENCORE_NGINX_BIN", "/usr/sbin/nginx")
        modules = os.environ.get("ENCORE_NGINX_MODULES") or str(
            ROOT / os.environ.get("ENCORE_BUILD", "build") / "modules")
        self.module = os.path.join(modules, "ngx_http_encore_module.so")
        self.write(http_conf)

    def write(self, http_conf):
        t = self.dir / "tmp"
        self.conf.write_text(
            "load_module %s;\n" % self.module
            + ("user root;\n" if os.getuid() == 0 else "")
            + "worker_processes 1;\ndaemon on;\npid %s;\n" % (self.dir / "nginx.pid")
            + "events { worker_connections 64; }\n"
            + "http {\n    access_log off;\n"
            + "".join("    %s_temp_path %s;\n" % (k, t / k)
                      for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            + http_conf.replace("@PORT@", str(self.port)) + "\n}\n")

    def run(self, *args):
        return subprocess.run([self.bin, "-p", str(self.dir) + "/", "-c", str(self.conf),
                               "-e", str(self.error_log), *args],
                              capture_output=True, text=True, timeout=60)

    def start(self):
        r = self.run()
        assert r.returncode == 0, r.stdout + r.stderr + self.log()
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                requests.get(self.url("/"), timeout=2)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError("private nginx did not answer\n" + self.log())

    def master(self):
        return int((self.dir / "nginx.pid").read_text())

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def log(self):
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def problems(self, allow=()):
        """[alert]/[emerg] lines, crashes and sanitizer reports, but those
        containing one of `allow`."""
        return nginx_log_problems(self.error_log, allow=allow)

    def stop(self):
        try:
            pid = self.master()
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            return
        try:
            wait_gone(pid, timeout=20)
        except AssertionError:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def private_nginx(tmp_path):
    made = []

    def make(http_conf):
        n = PrivateNginx(tmp_path, http_conf)
        made.append(n)
        return n.start()

    yield make
    for n in made:
        n.stop()
    # after the stop: LeakSanitizer reports when the processes exit. A test
    # may provoke [alert]/[emerg] (and checks them itself), never a crash
    for n in made:
        crashes = nginx_log_problems(n.error_log, alerts=False)
        assert crashes == [], "\n".join(crashes)


METRICS_ONLY = """
    encore_metrics_zone  m:256k max_series=%d;
    server {
        listen  127.0.0.1:@PORT@;
        location = /metrics { encore_metrics_route metrics; encore_metrics_expose; }
        location / { encore_metrics_route other; return 204; }
    }
"""


def test_reload_with_another_max_series_is_refused(private_nginx):
    # Regression: such a reload freed the table and made a new one in the
    # same zone while the old generation's workers still wrote into it
    # (a use-after-free in shared memory). It is refused now, as limit_req
    # refuses a zone declared again with another key; the old
    # configuration keeps running with its counters.
    n = private_nginx(METRICS_ONLY % 100)
    for _ in range(5):
        assert requests.get(n.url("/x")).status_code == 204
    before = parse(requests.get(n.url("/metrics")).text)
    assert total(before, "encore_metrics_series_max") == 100
    old = nginx_workers(n.master())
    assert old

    n.write(METRICS_ONLY % 200)
    os.kill(n.master(), signal.SIGHUP)
    deadline = time.time() + 20
    while time.time() < deadline and "different max_series" not in n.log():
        time.sleep(0.1)
    assert 'encore_metrics_zone "m" is already declared with a different ' \
        "max_series" in n.log(), n.log()
    time.sleep(0.5)
    assert nginx_workers(n.master()) == old, "the reload was not refused"

    after = parse(requests.get(n.url("/metrics")).text)
    assert total(after, "encore_metrics_series_max") == 100
    other = delta(before, after, "encore_http_requests_total", route="other")
    assert sum(other.values()) == 0, other
    assert total(before, "encore_http_requests_total", route="other") >= 5
    assert n.problems(allow=("different max_series",)) == []

    # the same settings again reload, and keep the counters
    n.write(METRICS_ONLY % 100)
    os.kill(n.master(), signal.SIGHUP)
    deadline = time.time() + 20
    while time.time() < deadline and (nginx_workers(n.master()) & old):
        time.sleep(0.1)
    assert not (nginx_workers(n.master()) & old), n.log()
    again = parse(requests.get(n.url("/metrics")).text)
    assert total(again, "encore_http_requests_total", route="other") == \
        total(before, "encore_http_requests_total", route="other")
    assert n.problems(allow=("different max_series",)) == []
