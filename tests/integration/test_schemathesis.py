"""Contract test (issue 7): Schemathesis against the test stack's edge.

Runs the Schemathesis CLI (pinned in tests/requirements.txt) on
schemas/api/openapi.yaml against the live edge, with every phase
(examples, coverage, fuzzing, stateful: the spec's OpenAPI links chain
register -> login -> /auth/me -> /users/{id} and so on) and every check
(enabled in schemathesis.toml, so its per-operation exemptions hold), for
the operations the stack can answer:

- the operational ones (/healthz, /readyz, /metrics, /metrics/{worker}),
  which nginx answers itself;
- each route of conf/routes.conf whose UPSTREAM's worker is running: the
  upstream{} of conf/upstreams.conf names the worker's socket
  (run/<worker>.sock), and the worker runs when its pid file
  (run/<worker>.pid, auto/stack) names a live process; but the routes
  that worker does not serve yet (EDGE_ROUTE_PENDING of
  tests/unit/api/test_worker_routes.py: it answers them 404).

A worker added later (ENCORE_WORKERS in auto/test) brings its operations in
by itself: nothing to list here. What it should bring with them, in the
spec: OpenAPI links from its creates to their reads, updates and deletes
(the stateful phase follows them), `examples` in its request schemas (the
examples phase sends them), and in tests/integration/schemathesis.toml an
`expected-statuses` entry only where valid-looking data is refused because
of the server's state (a wrong password, a cursor it never issued), with
the reason.

Authentication: the test makes a user, a moderator and an admin for the
run (the `admin` account promotes them) and hands their access tokens to
Schemathesis, which picks one by the operation's x-encore-policy (the auth
provider of schemathesis_hooks.py) and also tries the protected operations
without. The run's admin may disable or demote any account it finds in
responses: the provider then replaces a user's or moderator's account with
a fresh one, and the real `admin`, which the run does not use, is reset
afterwards (encore-auth bootstrap-admin --reset).

Bounded and repeatable: a fixed seed, no example database or cache,
max-examples per operation and max-steps per scenario in
schemathesis.toml, one Schemathesis worker. It cannot pass vacuously: the
run's JSON report must show every selected operation tested, checks run,
and every phase run.
"""
import json
import os
import re
import subprocess
import sys
import uuid

import pytest
import requests

from conftest import EDGE, ROOT, RUN_DIR, auth_cli, login, url

sys.path.insert(0, str(ROOT / "tests" / "unit" / "api"))
from test_worker_routes import EDGE_ROUTE_PENDING  # noqa: E402

ADMIN_PASSWORD = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")
SPEC = ROOT / "schemas" / "api" / "openapi.yaml"
CONFIG = ROOT / "tests" / "integration" / "schemathesis.toml"
HOOKS = ROOT / "tests" / "integration" / "schemathesis_hooks.py"
PHASES = ("examples", "coverage", "fuzzing", "stateful")
BODY_CREDENTIALS = {"POST /api/v1/auth/login", "POST /api/v1/auth/refresh",
                    "POST /api/v1/auth/logout"}

ROUTE_RE = re.compile(r'^\s*(GET|POST|PUT|PATCH|DELETE)\s+"?(/[^"\s]*)"?\s+([a-z0-9_]+)\s+(\S+)\s+\S+')
UPSTREAM_RE = re.compile(r"upstream\s+(\S+)\s*\{[^}]*?unix:@RUN_DIR@/run/([a-z0-9_-]+)\.sock", re.S)


def routes():
    """{route name: upstream} of the encore_routes block of conf/routes.conf."""
    text = (ROOT / "conf" / "routes.conf").read_text()
    block = text[text.index("encore_routes {"):]
    block = block[:block.index("\n}")]
    out = {}
    for line in block.splitlines():
        m = ROUTE_RE.match(line.split("#", 1)[0])
        if m:
            out[m.group(3)] = m.group(4)
    assert out, "no routes read from conf/routes.conf"
    return out


def upstream_workers():
    """{upstream: worker} of conf/upstreams.conf."""
    return dict(UPSTREAM_RE.findall((ROOT / "conf" / "upstreams.conf").read_text()))


def running(worker):
    pid_file = RUN_DIR / "run" / ("%s.pid" % worker)
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def spec_operations():
    """{operationId: path} of the spec."""
    import yaml

    spec = yaml.safe_load(SPEC.read_text())
    return {op["operationId"]: path for path, item in spec["paths"].items()
            for method, op in item.items() if isinstance(op, dict) and "operationId" in op}


def selected_operations():
    """The operationIds the running stack answers (the module's docstring)."""
    ups = upstream_workers()
    names = routes()
    out = []
    for op_id, path in sorted(spec_operations().items()):
        if op_id in EDGE_ROUTE_PENDING:
            continue                        # routed, not served yet
        if op_id in names:
            worker = ups.get(names[op_id])
            assert worker, "route %s: upstream %s not in conf/upstreams.conf" % (op_id, names[op_id])
            if running(worker):
                out.append(op_id)
        elif not path.startswith(("/api/", "/.well-known/")):
            out.append(op_id)               # operational: nginx answers it
    return out


def account(role, admin_token):
    """A fresh account with `role`, logged in: its access token."""
    name = "st_%s_%s" % (role[:3], uuid.uuid4().hex[:10])
    password = "contract-%s" % uuid.uuid4().hex
    r = requests.post(url("/api/v1/auth/register"),
                      json={"username": name, "email": name + "@example.test", "password": password})
    assert r.status_code == 201, r.text
    if role != "user":
        r = requests.patch(url("/api/v1/users/" + r.json()["id"]), json={"role": role},
                           headers={"Authorization": "Bearer " + admin_token})
        assert r.status_code == 200, r.text
    return login(name, password)["access_token"]


@pytest.fixture
def tokens():
    admin = login("admin", ADMIN_PASSWORD)["access_token"]
    yield {role: account(role, admin) for role in ("user", "moderator", "admin")}
    # the run's admin may have disabled or demoted the real one
    out = auth_cli("bootstrap-admin", "--reset", check=False)
    assert out.returncode == 0, out.stderr
    login("admin", ADMIN_PASSWORD)


def failures_section(output):
    """The part of Schemathesis's output that explains a failure."""
    start = output.find("=== FAILURES")
    if start < 0:
        start = output.find("=== ERRORS")
    return output[start:] if start >= 0 else output[-20000:]


# the suite's per-test timeout (auto/test, 120 s) is far below what the
# run may take: each running worker adds its operations (about 30 s for
# 35 on an idle machine, over 120 s on a loaded one); the subprocess's
# own timeout below bounds it
@pytest.mark.timeout(1260)
def test_schemathesis_contract(tokens, tmp_path):
    ops = selected_operations()
    assert any(spec_operations()[op].startswith("/api/") for op in ops), \
        "no API operation has a running worker: %s" % ops
    report = tmp_path / "report.json"
    cmd = [os.path.join(os.path.dirname(sys.executable), "schemathesis"),
           "--config-file", str(CONFIG), "run", str(SPEC),
           "--url", EDGE,
           "--phases=" + ",".join(PHASES),
           "--workers", "1",
           "--no-color",
           "--report", "json,junit",
           "--report-json-path", str(report),
           "--report-junit-path", str(tmp_path / "junit.xml")]
    for op in ops:
        cmd += ["--include-operation-id", op]
    env = dict(os.environ,
               ENCORE_ST_USER_TOKEN=tokens["user"],
               ENCORE_ST_MODERATOR_TOKEN=tokens["moderator"],
               ENCORE_ST_ADMIN_TOKEN=tokens["admin"],
               ENCORE_ST_EDGE=EDGE,
               ENCORE_ST_HOOKS=str(HOOKS),
               COLUMNS="120")
    run = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True,
                         timeout=1200)
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.log").write_text(output)
    print(output)                           # pytest shows it with -s or -rP
    if run.returncode != 0:
        pytest.fail("Schemathesis (exit %d) on %d operations: %s\n\n%s\n\nreproduce: %s"
                    % (run.returncode, len(ops), " ".join(ops), failures_section(output),
                       " ".join(cmd)), pytrace=False)

    # not vacuous: everything selected was tested, with checks, in every phase
    result = json.loads(report.read_text())
    assert result["complete"] and result["exit_code"] == 0, result
    assert result["operations"]["selected"] == len(ops), (result["operations"], ops)
    assert result["operations"]["tested"] == len(ops), result["operations"]
    cases = result["test_cases"]
    assert cases["generated"] - cases["without_checks"] > len(ops), cases
    for phase in PHASES:
        assert result["phases"][phase]["status"] == "success", (phase, result["phases"])
    # the tokens held: no operation answered only 401/403, but those whose
    # credentials are in the body (a login, a refresh token), which the
    # generator cannot guess
    unreached = set(result["warnings"]["missing_auth"]) - BODY_CREDENTIALS
    assert not unreached, (unreached, output[-3000:])
    assert "Stateful" in output and "API Links:" in output, output[-3000:]
    covered = re.search(r"API Links:\s+(\d+) covered", output)
    assert covered and int(covered.group(1)) > 0, output[-3000:]


def test_selection_follows_the_running_workers(monkeypatch):
    """The operation set is derived, not listed: today's stack runs auth,
    so its routes are in and catalog's are out; the operational ones always."""
    ops = set(selected_operations())
    assert {"auth_login", "auth_me", "users_get", "users_patch", "jwks", "healthz"} <= ops
    for op, worker in (("artists_list", "catalog"), ("posts_create", "content"),
                       ("search", "search")):
        assert (op in ops) == running(worker), (op, worker)
    # a worker that stops drops out
    monkeypatch.setitem(globals(), "running", lambda worker: worker != "auth")
    assert not {"auth_login", "users_get", "jwks"} & set(selected_operations())
    assert "healthz" in selected_operations()
    # routes the worker does not serve yet stay out while it runs
    monkeypatch.setitem(globals(), "running", lambda worker: True)
    assert not set(EDGE_ROUTE_PENDING) & set(selected_operations())
