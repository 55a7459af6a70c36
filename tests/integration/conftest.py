"""Integration test fixtures: black-box access to the stack auto/test started.

The stack (PostgreSQL, Kafka, the workers, nginx) runs under
$ENCORE_RUN_DIR on the ports auto/test exported; tests speak HTTP to the edge,
read Kafka back, and — for fault tests only — stop and start parts of the
stack through auto/stack and the pid files it keeps.
"""
import http.client
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN_DIR = pathlib.Path(os.environ.get("ENCORE_RUN_DIR", ROOT / "var" / "test"))
EDGE = "http://127.0.0.1:%s" % os.environ.get("ENCORE_EDGE_PORT", "18080")
KAFKA = "127.0.0.1:%s" % os.environ.get("ENCORE_KAFKA_PORT", "19092")
PG_PORT = os.environ.get("ENCORE_PG_PORT", "26432")


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a worker's unix socket (workers are not reachable by TCP)."""

    def __init__(self, path, timeout=10):
        super().__init__("worker", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class WorkerResponse:
    def __init__(self, status, headers, body):
        self.status_code = status
        self.headers = headers
        self.content = body

    def json(self):
        return json.loads(self.content)


def worker_request(worker, method, path, body=None, headers=None, raw=None):
    """Send one request straight to a worker's socket, bypassing the edge."""
    conn = UnixHTTPConnection(str(RUN_DIR / "run" / ("%s.sock" % worker)))
    hdrs = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    out = WorkerResponse(resp.status, resp.headers, resp.read())
    conn.close()
    return out


@pytest.fixture
def edge():
    s = requests.Session()
    s.base = EDGE
    yield s
    s.close()


def url(path):
    return EDGE + path


def unique(prefix="u"):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:12])


def register(username=None, password="correct horse battery", email=None):
    username = username or unique()
    email = email or "%s@example.test" % username
    r = requests.post(url("/api/v1/auth/register"),
                      json={"username": username, "email": email, "password": password})
    assert r.status_code == 201, r.text
    return r.json(), password


def login(login_name, password):
    r = requests.post(url("/api/v1/auth/login"),
                      json={"login": login_name, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def account_with_role(role="user", admin_token=None):
    """A fresh account with role (a moderator or admin promoted by
    admin_token), signed in again so its token carries the role:
    (user, password, login answer)."""
    user, pw = register()
    if role != "user":
        r = requests.patch(url("/api/v1/users/" + user["id"]), json={"role": role},
                           headers={"Authorization": "Bearer " + admin_token})
        assert r.status_code == 200, r.text
        assert r.json()["role"] == role
    session = login(user["username"], pw)
    assert session["user"]["role"] == role
    return user, pw, session


def auth_cli(*args, check=True):
    """Run an encore-auth operator command against the test stack."""
    env = dict(os.environ)
    build = env.get("ENCORE_BUILD", "build")
    return subprocess.run([str(ROOT / build / "bin" / "encore-auth"),
                           "-c", "conf/workers/auth.conf", *args],
                          cwd=str(ROOT), env=env, check=check,
                          capture_output=True, text=True, timeout=60)


def assert_problem(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status
    assert body["title"] and "detail" in body
    return body


# ---- Kafka -------------------------------------------------------------------

def _value(raw):
    """A record's value as JSON; None when empty or not JSON (a topic may
    hold a malformed record a consumer test produced on purpose: readers
    filtering by key must not fail on it; "raw" keeps the bytes)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def kafka_read(topic, until=None, timeout=30.0, group=None):
    """Read a topic from the beginning with a fresh consumer group.

    Returns a list of dicts {key, value, headers}. Stops when `until(msgs)`
    is true or the timeout passes.
    """
    from confluent_kafka import Consumer

    c = Consumer({
        "bootstrap.servers": KAFKA,
        "group.id": group or "encore-test-%s" % uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "allow.auto.create.topics": True,
    })
    c.subscribe([topic])
    msgs = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                if until and until(msgs):
                    break
                continue
            hdrs = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
            msgs.append({"key": m.key().decode() if m.key() else None,
                         "value": _value(m.value()), "raw": m.value(),
                         "headers": hdrs})
            if until and until(msgs):
                break
    finally:
        c.close()
    return msgs


def kafka_events(topic, want, timeout=90, also=None):
    """The records of topic whose key is in want (a set of (key, ce_type)
    pairs), read from the beginning until every pair was seen (and
    also(the records so far) is true, when given)."""
    keys = {k for k, _ in want}
    seen, mine = set(), []

    def done(msgs):
        while done.at < len(msgs):
            m = msgs[done.at]
            done.at += 1
            if m["key"] in keys:
                mine.append(m)
                seen.add((m["key"], m["headers"].get("ce_type")))
        return want <= seen and (also is None or also(mine))
    done.at = 0

    kafka_read(topic, until=done, timeout=timeout)
    assert want <= seen, "missing events: %s" % sorted(want - seen)
    assert also is None or also(mine), "the events never got there: %s" % mine
    return mine


def kafka_read_all(topic, timeout=60.0, missing_ok=False):
    """Every message of every partition of a topic, from the beginning to
    the end each partition had when called (its high watermark). Unlike
    kafka_read, it never stops early: it fails unless every partition was
    read to that end within the timeout.  A topic the broker does not have
    yet (the relay's first event creates it) fails too, or with missing_ok
    is empty."""
    from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                                 TopicPartition)

    c = Consumer({
        "bootstrap.servers": KAFKA,
        "group.id": "encore-test-%s" % uuid.uuid4().hex,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    msgs = []
    try:
        meta = c.list_topics(topic, timeout=10)
        if missing_ok and not (topic in meta.topics and meta.topics[topic].partitions):
            return msgs
        assert topic in meta.topics and meta.topics[topic].partitions, \
            "no partitions for %s" % topic
        ends = {}
        for p in meta.topics[topic].partitions:
            _, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = hi
        # read_committed (the default): transaction markers take offsets but
        # are never delivered, so a partition is done at its EOF past `hi`
        left = set(ends)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.time() + timeout
        while left and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF \
                        and m.offset() >= ends[m.partition()]:
                    left.discard(m.partition())
                continue
            hdrs = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
            msgs.append({"key": m.key().decode() if m.key() else None,
                         "value": _value(m.value()), "raw": m.value(),
                         "headers": hdrs, "partition": m.partition(),
                         "offset": m.offset()})
        assert not left, "partitions %s of %s not read to their end %r in %ss" % (
            sorted(left), topic, ends, timeout)
    finally:
        c.close()
    return msgs


# ---- stack control (fault tests) ---------------------------------------------

def stack(*args, check=True):
    return subprocess.run([str(ROOT / "auto" / "stack"), *args], check=check,
                          capture_output=True, text=True, timeout=300)


def pid_of(name):
    p = RUN_DIR / "run" / ("%s.pid" % name)
    return int(p.read_text().strip()) if p.exists() else None


def signal_part(name, sig):
    pid = pid_of(name)
    assert pid, "no pid file for %s" % name
    os.kill(pid, sig)
    return pid


def wait_gone(pid, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError("pid %d still alive" % pid)


def pg_immediate_stop():
    subprocess.run(["runuser", "-u", "postgres", "--",
                    "/usr/lib/postgresql/15/bin/pg_ctl", "-D", str(RUN_DIR / "pg"),
                    "-m", "immediate", "-w", "stop"], check=True, capture_output=True,
                   cwd="/")    # postgres may not enter the checkout


def free_port():
    """A loopback port nothing listens on now (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=30.0, step=0.2, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


# ---- after the whole run: the logs must be clean ---------------------------------

# ASan/LSan reports, and UBSan's ("file:line:col: runtime error: ...")
# ---- the revocation feed --------------------------------------------------------

ZONE = "Encore-Revocation-Zone"
# the zone id each edge (base URL) answered with, as the agent keeps it
_zones = {}


def post_revocations(revocations=(), replayed=True, through=None, base=None,
                     zone=None, **kw):
    """POST /internal/revocations as the edge agent does (REVOKE-SPEC).
    Like the agent, it sends back the zone id the edge answered with
    (Encore-Revocation-Zone): the edge takes "replayed" only with its own
    zone's id, so the first post to an edge, when "replayed", is preceded
    by an empty one that learns it.  zone: the id to send instead (False:
    none)."""
    base = base or EDGE
    auto = zone is None
    if auto and replayed and base not in _zones:
        post_revocations(replayed=False, base=base, zone=False)
    if auto:
        zone = _zones.get(base)
    given = kw.pop("headers", None) or {}
    headers = dict(given)
    if zone:
        headers[ZONE] = zone
    body = {"revocations": list(revocations), "replayed": replayed,
            "through": int(time.time() * 1000) if through is None else through}
    r = requests.post(base + "/internal/revocations", json=body,
                      headers=headers, timeout=10, **kw)
    answered = r.headers.get(ZONE)
    if answered:
        _zones[base] = answered
        if auto and replayed and answered != zone:
            # another nginx now (a private one on a port used before): as
            # the agent, nothing of the entries to replay but these
            r = post_revocations(revocations, replayed, through, base,
                                 headers=given, **kw)
    return r


class StandInFeed:
    """Heartbeats to the edge while no edge agent runs in the stack: the
    shipped configuration has a revocation zone, so the edge's /readyz
    waits for a replayed, fresh feed (conf/jwt.conf).  With the agent
    (auto/stack starts it when built), the agent feeds it instead."""

    def __init__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            try:
                post_revocations()
            except requests.RequestException:
                pass
            self.stop.wait(0.5)


@pytest.fixture(scope="session", autouse=True)
def revocation_feed():
    if (RUN_DIR / "run" / "edge-agent.pid").exists():
        yield None
        return
    feed = StandInFeed()
    feed.thread.start()
    # until the edge counts the feed as current
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if post_revocations().status_code == 204:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    yield feed
    feed.stop.set()
    feed.thread.join()


SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:")
# a crashed nginx process or a sanitizer report in an nginx error log
NGINX_CRASH = re.compile(r"exited on signal|" + SANITIZER.pattern)


def nginx_log_problems(*logs, allow=(), alerts=True):
    """The lines of nginx error logs that mean something went wrong: a
    sanitizer report, a process that exited on a signal and, with
    `alerts`, [alert]/[emerg] lines; but those containing one of `allow`.
    A log that does not exist has no problems."""
    bad = re.compile(r"\[alert\]|\[emerg\]|" + NGINX_CRASH.pattern) if alerts else NGINX_CRASH
    out = []
    for log in logs:
        log = pathlib.Path(log)
        if not log.exists():
            continue
        out += ["%s: %s" % (log.name, l) for l in log.read_text(errors="replace").splitlines()
                if bad.search(l) and not any(a in l for a in allow)]
    return out


def pytest_sessionfinish(session, exitstatus):
    problems = []
    err_log = RUN_DIR / "log" / "nginx-error.log"
    if err_log.exists():
        # the ASan nginx (auto/test) writes its reports to stderr, which
        # nginx started with -e sends to this log: the loop below scans it
        for line in err_log.read_text(errors="replace").splitlines():
            if "[alert]" in line or "[emerg]" in line:
                problems.append("nginx: " + line)
    for log in (RUN_DIR / "log").glob("*.log"):
        if log.name.startswith(("nginx-access", "kafka", "postgres", "initdb")):
            continue
        for line in log.read_text(errors="replace").splitlines():
            if SANITIZER.search(line):
                problems.append("%s: %s" % (log.name, line))
    if problems:
        print("\nlog problems after the run:\n" + "\n".join(problems[:50]))
        session.exitstatus = 1
