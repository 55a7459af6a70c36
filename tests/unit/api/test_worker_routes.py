"""Every worker's route table agrees with the edge's (conf/routes.conf).

A worker declares its routes in an `enc_route_t` table (workers/lib/http.h:
method, path template, handler, flags, name), in workers/<worker>/*.c; the
name labels the worker's own metrics (encore_http_requests_total{route=}),
as the edge's NAME labels the edge's. One request must be one route in
both, so for every worker with such a table:

- each of its routes is a route of the edge, same method and path (the
  names of {param}s may differ), whose UPSTREAM is encore_<worker> and whose
  NAME is the worker's name;
- each route of the edge whose UPSTREAM is encore_<worker> is in the
  worker's table (else the edge forwards what the worker answers 404),
  unless listed in EDGE_ROUTE_PENDING or aggregated at the edge (a view:
  its named location has encore_aggregate_part, conf/views.conf, and no
  worker serves its path).

Workers are found by their directories (workers/<worker>/main.c, as the
Makefile finds them), so a new worker is checked without a change here.
Exemptions are listed below, each with its reason.

And every route of the edge continues in a named location of
conf/routes.conf that forwards to its UPSTREAM with a literal proxy_pass
(ngx_modules/route/README.md: nginx refuses a location that forwards
elsewhere; this also catches a route left without a location) and keeps
upstream connections alive (proxy.conf), or is a view, which forwards
nothing itself.
"""
import glob
import os
import re

import pytest

from openapi_support import ROOT
from test_routes_match_openapi import (CONF_DIR, PARAM_RE, ROUTES_FILE,
                                       load_routes, parse_conf, rel, walk)

WORKERS_DIR = os.path.join(ROOT, "workers")

# workers whose routes the edge does not route, with the reason
WORKER_EXEMPT = {
    "probe": "the integration tests' outbox/consumer witness, not part of a "
             "deployment (conf/workers/probe.conf); tests reach it through "
             "their own locations",
}

# (worker, METHOD, path) a worker serves that no edge route forwards to
ROUTE_EXEMPT = {
    ("auth", "GET", "/internal/verify"):
        "nginx's auth_request target through an `internal` location only; "
        "no public route of the edge forwards to it (workers/auth/verify.c)",
    ("catalog", "GET", "/internal/artists"):
        "the post view's batch of artists, a part fetched through the "
        "`internal` location /_part/catalog/ only (conf/views.conf); no "
        "public route of the edge forwards to it",
}

# routes of the edge (by NAME) whose upstream's worker exists but does not
# serve them (yet), with the reason; an entry is refused once the worker
# serves the route
EDGE_ROUTE_PENDING = {
}

TABLE_RE = re.compile(r"\benc_route_t\s+(\w+)\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", re.S)
ENTRY_RE = re.compile(r"\{\s*(NULL|\"[^\"]*\")\s*,\s*(NULL|\"[^\"]*\")\s*,"
                      r"\s*([^,{}]*?)\s*,\s*([^,{}]*?)\s*,\s*(NULL|\"[^\"]*\")\s*\}")
NAME_RE = re.compile(r"^[a-z0-9_]+$")


def strip_c_comments(text):
    # string literals first, so that "/*" inside one is not a comment; a
    # comment keeps its newlines, so that line numbers stay right
    return re.sub(r'"(?:\\.|[^"\\])*"|/\*.*?\*/|//[^\n]*',
                  lambda m: m.group(0) if m.group(0).startswith('"')
                  else " " + "\n" * m.group(0).count("\n"),
                  text, flags=re.S)


def parse_route_tables(text, filename):
    """[(method, path, name, where)] of every enc_route_t table in a C
    source, up to each table's {NULL} end."""
    text = strip_c_comments(text)
    out = []
    for table in TABLE_RE.finditer(text):
        body = table.group(2) + "}"
        line0 = text.count("\n", 0, table.start(2)) + 1
        pos, ended = 0, False
        for entry in ENTRY_RE.finditer(body):
            between = body[pos:entry.start()].strip().strip(",").strip()
            if between:
                raise AssertionError("%s:%d: cannot read %r in table %s"
                                     % (filename, line0, between[:60], table.group(1)))
            pos = entry.end()
            method, path, name = (None if g == "NULL" else g.strip('"')
                                  for g in entry.group(1, 2, 5))
            where = "%s:%d" % (filename, line0 + body.count("\n", 0, entry.start()))
            if method is None:
                ended = True
                break
            out.append((method, path, name, where))
        if not ended:
            raise AssertionError("%s:%d: table %s: no {NULL} end found (an entry "
                                 "this test cannot read?)" % (filename, line0, table.group(1)))
    return out


def worker_dirs():
    """The workers serving the API: not the agents (.no_database = 1,
    the edge agent), which serve only /healthz, /readyz, /metrics."""
    out = []
    for p in glob.glob(os.path.join(WORKERS_DIR, "*", "main.c")):
        with open(p, encoding="utf-8") as f:
            if re.search(r"\.no_database\s*=\s*1", f.read()):
                continue
        if os.path.basename(os.path.dirname(p)) != "lib":
            out.append(os.path.basename(os.path.dirname(p)))
    return sorted(out)


def worker_routes(worker):
    out = []
    for path in sorted(glob.glob(os.path.join(WORKERS_DIR, worker, "*.c"))):
        with open(path, encoding="utf-8") as f:
            out.extend(parse_route_tables(f.read(), rel(path)))
    return out


def normalized(path):
    return PARAM_RE.sub("{}", path)


def routes_tree():
    """conf/routes.conf with its includes of conf/ read in place."""
    with open(ROUTES_FILE, encoding="utf-8") as f:
        return parse_conf(f.read(), rel(ROUTES_FILE), CONF_DIR)


def named_locations(tree):
    return {d.args[0]: d for d in walk(tree)
            if d.name == "location" and len(d.args) == 1 and d.args[0].startswith("@")}


def is_view(loc):
    return any(x.name == "encore_aggregate_part" for x in loc.block)


def route_location(r, tree):
    """The name of the named location a route continues in, or None."""
    default, by_upstream = None, {}
    for d in tree:
        if d.name == "encore_route_location":
            if len(d.args) == 1:
                default = d.args[0]
            elif len(d.args) == 2:
                by_upstream[d.args[0]] = d.args[1]
    return r.options.get("location") or by_upstream.get(r.upstream) or default


def aggregated_routes(edge=None):
    """Names of the edge's routes that continue in a view."""
    tree = routes_tree()
    named = named_locations(tree)
    return {r.name for r in (edge or load_routes())
            if route_location(r, tree) in named and is_view(named[route_location(r, tree)])}


def disagreements(worker, routes, edge, pending=None, aggregated=None):
    """What is wrong between one worker's table and the edge's routes, one
    message each.  pending: names of EDGE_ROUTE_PENDING; aggregated: names
    of the routes that are views (default: this checkout's)."""
    pending = EDGE_ROUTE_PENDING if pending is None else pending
    aggregated = aggregated_routes(edge) if aggregated is None else aggregated
    upstream = "encore_" + worker
    at_edge = {(r.method, normalized(r.path)): r for r in edge}
    problems, served, names = [], set(), {}
    for method, path, name, where in routes:
        if name is None or not NAME_RE.match(name):
            problems.append("%s: route name %r is not [a-z0-9_]" % (where, name))
        elif name in names:
            problems.append("%s: route name %s already used at %s" % (where, name, names[name]))
        else:
            names[name] = where
        if (worker, method, path) in ROUTE_EXEMPT:
            continue
        key = (method, normalized(path))
        served.add(key)
        r = at_edge.get(key)
        if r is None:
            problems.append("%s: %s %s is not a route of the edge (%s)"
                            % (where, method, path, rel(ROUTES_FILE)))
            continue
        if r.upstream != upstream:
            problems.append("%s: %s %s goes to %s at the edge (%s), not %s"
                            % (where, method, path, r.upstream, r.where, upstream))
        if r.name != name:
            problems.append("%s: %s %s is named %s here but %s at the edge (%s)"
                            % (where, method, path, name, r.name, r.where))
    for r in edge:
        if r.upstream != upstream:
            continue
        if (r.method, normalized(r.path)) not in served:
            if r.name not in pending and r.name not in aggregated:
                problems.append("%s: %s %s (%s) goes to %s, whose route table does not "
                                "have it" % (r.where, r.method, r.path, r.name, worker))
        elif r.name in aggregated:
            problems.append("%s: %s %s (%s) is a view aggregated at the edge, yet %s "
                            "serves it too (a route the edge never forwards)"
                            % (r.where, r.method, r.path, r.name, worker))
        elif r.name in pending:
            problems.append("%s: %s %s (%s) is served by %s now: remove it from "
                            "EDGE_ROUTE_PENDING" % (r.where, r.method, r.path, r.name, worker))
    return problems


# ---- the parser itself ----------------------------------------------------------------

SAMPLE = r"""
/* a comment with { "GET", "/x", h, 0, "not_a_route" }
   over two lines */
static const enc_route_t  things_routes[] = {
    { "GET", "/api/v1/things", h_list, 0, "things_list" },   // trailing
    { "PATCH", "/api/v1/things/{thing_id}", h_patch,
      ENC_ROUTE_ADMIN | ENC_ROUTE_JSON_BODY, "things_patch" },
    { NULL, NULL, NULL, 0, NULL }
};
"""


def test_parser_reads_route_tables():
    assert parse_route_tables(SAMPLE, "x.c") == [
        ("GET", "/api/v1/things", "things_list", "x.c:5"),
        ("PATCH", "/api/v1/things/{thing_id}", "things_patch", "x.c:6")]


def test_parser_refuses_what_it_cannot_read():
    with pytest.raises(AssertionError, match="cannot read"):
        parse_route_tables(SAMPLE.replace('{ "GET"', 'ROUTE("GET") { "GET"'), "x.c")
    with pytest.raises(AssertionError, match="no {NULL} end"):
        parse_route_tables(SAMPLE.replace("{ NULL, NULL, NULL, 0, NULL }", ""), "x.c")


def test_disagreements_are_found():
    from test_routes_match_openapi import parse_routes
    edge = parse_routes("""
        encore_routes {
            GET    "/api/v1/things"       things_list   encore_things  public;
            PATCH  "/api/v1/things/{id}"  things_patch  encore_things  admin;
            GET    "/api/v1/other"        other         encore_other   public;
            DELETE "/api/v1/things/{id}"  things_del    encore_things  admin;
        }""", "routes.conf")
    routes = parse_route_tables(SAMPLE, "x.c")
    assert disagreements("things", routes, edge) == [
        "routes.conf:6: DELETE /api/v1/things/{id} (things_del) goes to things, "
        "whose route table does not have it"]
    renamed = [r[:2] + ("things_admin_patch",) + r[3:] if r[1].endswith("}") else r
               for r in routes]
    assert disagreements("things", renamed, edge)[0] == (
        "x.c:6: PATCH /api/v1/things/{thing_id} is named things_admin_patch here "
        "but things_patch at the edge (routes.conf:4)")
    assert any("goes to encore_things at the edge" in p
               for p in disagreements("other", routes, edge))
    pending = parse_routes("""
        encore_routes {
            GET  "/api/v1/views/artist/{id}"  views_artist  encore_things  public;
        }""", "routes.conf")
    assert disagreements("things", [], pending, {"views_artist"}, set()) == []
    assert disagreements("things", [("GET", "/api/v1/views/artist/{x}", "views_artist",
                                     "x.c:1")], pending, {"views_artist"}, set()) == [
        "routes.conf:3: GET /api/v1/views/artist/{id} (views_artist) is served by "
        "things now: remove it from EDGE_ROUTE_PENDING"]
    # a view: no worker serves it, and one that does is a dead route
    assert disagreements("things", [], pending, {}, {"views_artist"}) == []
    assert disagreements("things", [], pending, {}, set()) == [
        "routes.conf:3: GET /api/v1/views/artist/{id} (views_artist) goes to things, "
        "whose route table does not have it"]
    assert disagreements("things", [("GET", "/api/v1/views/artist/{x}", "views_artist",
                                     "x.c:1")], pending, {}, {"views_artist"}) == [
        "routes.conf:3: GET /api/v1/views/artist/{id} (views_artist) is a view "
        "aggregated at the edge, yet things serves it too (a route the edge never "
        "forwards)"]
    extra = routes + [("GET", "/api/v1/nowhere", "nowhere", "x.c:9")]
    assert any(p.startswith("x.c:9: GET /api/v1/nowhere is not a route of the edge")
               for p in disagreements("things", extra, edge))


# ---- the workers of this checkout ------------------------------------------------------

def test_workers_have_route_tables():
    workers = worker_dirs()
    assert "auth" in workers, workers
    for w in workers:
        assert worker_routes(w), "workers/%s: no enc_route_t table found" % w
    # the table this test was written against; a parser that reads nothing
    # would pass everything below
    assert len(worker_routes("auth")) >= 12


@pytest.mark.parametrize("worker", [w for w in worker_dirs() if w not in WORKER_EXEMPT])
def test_worker_routes_are_the_edge_routes(worker):
    problems = disagreements(worker, worker_routes(worker), load_routes())
    assert not problems, "\n".join(problems)


def test_exemptions_are_current():
    workers = worker_dirs()
    for w in WORKER_EXEMPT:
        assert w in workers, "WORKER_EXEMPT names %s, which is not a worker" % w
    for w, method, path in ROUTE_EXEMPT:
        assert (method, path) in {(m, p) for m, p, _, _ in worker_routes(w)}, \
            "ROUTE_EXEMPT names %s %s, which %s does not serve" % (method, path, w)
    names = {r.name for r in load_routes()}
    for name in EDGE_ROUTE_PENDING:
        assert name in names, "EDGE_ROUTE_PENDING names %s, which is not a route " \
            "of the edge" % name


# ---- the edge's forwarding -------------------------------------------------------------

def test_every_route_forwards_to_its_upstream_literally():
    tree = routes_tree()
    for d in tree:
        if d.name == "encore_route_location":
            assert len(d.args) in (1, 2), d.where
    named = named_locations(tree)
    problems = []
    for r in load_routes():
        name = route_location(r, tree)
        if name is None:
            problems.append("%s: %s has no named location to continue in" % (r.where, r.name))
            continue
        loc = named.get(name)
        if loc is None:
            problems.append("%s: %s continues in %s, which %s does not define"
                            % (r.where, r.name, name, rel(ROUTES_FILE)))
            continue
        passes = [x.args for x in loc.block if x.name == "proxy_pass"]
        if is_view(loc):
            # a view's parts forward (test_views_conf.py); the view itself
            # answers from them
            if passes:
                problems.append("%s: %s continues in the view %s (%s), which has a "
                                "proxy_pass as well" % (r.where, r.name, name, loc.where))
            continue
        if passes != [["http://" + r.upstream]]:
            problems.append("%s: %s (%s) continues in %s (%s), whose proxy_pass is %s, "
                            "not http://%s" % (r.where, r.name, r.upstream, name, loc.where,
                                               passes, r.upstream))
        # keepalive to the upstream needs HTTP/1.1 and no Connection header
        # (proxy.conf, included by every such location)
        if [x.args for x in loc.block if x.name == "proxy_http_version"] != [["1.1"]] \
                or ["Connection", ""] not in [x.args for x in loc.block
                                              if x.name == "proxy_set_header"]:
            problems.append("%s: %s continues in %s (%s), which does not keep upstream "
                            "connections alive (include proxy.conf)"
                            % (r.where, r.name, name, loc.where))
    assert not problems, "\n".join(problems)
