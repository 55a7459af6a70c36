"""The views of conf/views.conf agree with the spec and reach the workers
only through internal part locations.

A view is a named location with `encore_aggregate_part NAME URI [flags]`
lines (ngx_modules/aggregate); a route of conf/routes.conf continues in it
(location=@view_*).  Checked here, without nginx:

- each view's members (its parts' names, or their key=) are the
  properties of the schema its operation answers 200 with, in the same
  order, and the main part is a member the schema requires;
- each view has `encore_jwt optional`, so the caller's identity reaches
  its parts (a draft's author sees it);
- a part's URI starts with /_part/<worker>/, a location that is
  `internal`, forwards to upstream encore_<worker> with the prefix
  stripped (proxy_pass http://encore_<worker>/), keeps connections alive
  (proxy.conf) and fetches parts as view-part.conf says (no body, no
  proxy_max_temp_file_size 0: ngx_modules/aggregate/README.md);
- a {part.field} reference names a part declared earlier in the view;
- view-part.conf never caches for, nor serves the cache to, a caller with
  identity headers or credentials, and its cache is views-http.conf's;
- no route of the edge is under /internal/ or /_part/.
"""
import os
import re

from openapi_support import ROOT, load_spec, resolve
from test_routes_match_openapi import CONF_DIR, load_routes, parse_conf, rel, walk
from test_worker_routes import named_locations, route_location, routes_tree

REF_RE = re.compile(r"(?<!\$)\{([a-z_][a-z0-9_]*)\.[A-Za-z0-9_.]+\}")
FLAGS = ("main", "required", "merge")


def conf(name):
    path = os.path.join(CONF_DIR, name)
    with open(path, encoding="utf-8") as f:
        return parse_conf(f.read(), rel(path), CONF_DIR)


def parts(loc):
    """[(name, uri, {option: value}, where)] of a view's location."""
    out = []
    for d in loc.block:
        if d.name != "encore_aggregate_part":
            continue
        assert len(d.args) >= 2, d.where
        opts = {}
        for a in d.args[2:]:
            k, eq, v = a.partition("=")
            opts[k] = v if eq else True
        out.append((d.args[0], d.args[1], opts, d.where))
    return out


def views():
    """{route name: (route, location directive)} of the routes that are views."""
    tree = routes_tree()
    named = named_locations(tree)
    out = {}
    for r in load_routes():
        loc = named.get(route_location(r, tree))
        if loc is not None and parts(loc):
            out[r.name] = (r, loc)
    return out


def part_locations():
    """{prefix: location directive} of the server's /_part/ locations."""
    return {d.args[-1]: d for d in walk(routes_tree())
            if d.name == "location" and d.block is not None
            and d.args and d.args[-1].startswith("/_part/")}


def test_the_three_views_are_configured():
    assert set(views()) == {"views_post", "views_artist", "views_home"}


def test_view_members_are_the_spec_schema():
    spec = load_spec()
    ops = {op["operationId"]: op for item in spec["paths"].values()
           for op in item.values() if isinstance(op, dict) and "operationId" in op}
    for name, (r, loc) in views().items():
        ok = resolve(ops[name]["responses"]["200"], spec)
        schema = resolve(ok["content"]["application/json"]["schema"], spec)
        members = [opts.get("key", part) for part, _, opts, _ in parts(loc)]
        assert not any("merge" in opts for _, _, opts, _ in parts(loc)), loc.where
        props = [p for p in schema["properties"] if p != "errors"]
        assert members == props, (loc.where, members, props)
        assert "errors" in schema["properties"], name
        mains = [part for part, _, opts, _ in parts(loc) if "main" in opts]
        assert len(mains) <= 1, loc.where
        for m in mains:
            assert m in schema["required"], (loc.where, m)
            assert "{" in r.path, "%s: a main part without a path parameter" % r.where


def test_views_pass_identity_to_their_parts():
    for name, (r, loc) in views().items():
        assert [d.args for d in loc.block if d.name == "encore_jwt"] == [["optional"]], \
            "%s: a view takes identity as its route's policy (public) does" % loc.where
        assert not [d for d in loc.block if d.name == "proxy_pass"], loc.where


def test_parts_go_through_internal_part_locations():
    locs = part_locations()
    assert locs, "no /_part/ location"
    with open(os.path.join(CONF_DIR, "upstreams.conf"), encoding="utf-8") as f:
        upstreams = {d.args[0] for d in parse_conf(f.read(), "upstreams.conf")
                     if d.name == "upstream"}
    used = set()
    for name, (r, loc) in views().items():
        for part, uri, opts, where in parts(loc):
            assert set(opts) <= set(FLAGS) | {"timeout", "max_size", "pick", "key", "fields",
                                              "deny", "max_items"}, where
            m = re.match(r"^(/_part/[a-z0-9_]+/)", uri)
            assert m and m.group(1) in locs, "%s: part %s is not under a /_part/<worker>/ " \
                "location: %s" % (where, part, uri)
            used.add(m.group(1))
    for prefix, d in locs.items():
        worker = prefix.split("/")[2]
        body = {x.name: x.args for x in d.block}
        assert d.args == [prefix], "%s: a plain prefix location" % d.where
        assert "internal" in body, "%s: reachable from outside" % d.where
        assert ("encore_%s" % worker) in upstreams, d.where
        assert [x.args for x in d.block if x.name == "proxy_pass"] == \
            [["http://encore_%s/" % worker]], "%s: must strip %s" % (d.where, prefix)
        sets = [x.args for x in d.block if x.name == "proxy_set_header"]
        assert body.get("proxy_http_version") == ["1.1"] and ["Connection", ""] in sets, \
            "%s: include proxy.conf" % d.where
        assert ["Content-Length", ""] in sets, "%s: include view-part.conf" % d.where
        assert body.get("proxy_pass_request_body") == ["off"], d.where
        # a background subrequest's answer larger than its buffers would
        # wait for its timeout without the temporary file
        assert body.get("proxy_max_temp_file_size") != ["0"], d.where
        assert "proxy_buffers" in body, d.where
        assert body.get("proxy_cache") == ["encore_parts"], d.where
        ttl = body.get("proxy_cache_valid")
        assert ttl and ttl[0] == "200" and re.match(r"^[1-9][0-9]?s$", ttl[-1]), \
            "%s: a short TTL for 200 only: %s" % (d.where, ttl)
    assert used == set(locs), "part locations no view uses: %s" % sorted(set(locs) - used)


def test_references_name_earlier_parts():
    for name, (r, loc) in views().items():
        seen = []
        for part, uri, opts, where in parts(loc):
            for ref in REF_RE.findall(uri):
                assert ref in seen, "%s: {%s...} is not an earlier part" % (where, ref)
            seen.append(part)


def test_parts_cache_only_for_anonymous_readers():
    body = {d.name: d.args for d in conf("view-part.conf")}
    identity = {"$http_x_encore_user_id", "$http_authorization", "$cookie_encore_access"}
    assert identity <= set(body["proxy_no_cache"]), body["proxy_no_cache"]
    assert identity <= set(body["proxy_cache_bypass"]), body["proxy_cache_bypass"]
    assert body["proxy_cache"] == ["encore_parts"]
    paths = [d for d in conf("views-http.conf") if d.name == "proxy_cache_path"]
    assert len(paths) == 1
    assert paths[0].args[0].startswith("@RUN_DIR@/"), "everything nginx writes is under the run dir"
    assert any(a.startswith("keys_zone=encore_parts:") for a in paths[0].args), paths[0].args
    http = [d for d in walk(conf("nginx.conf")) if d.name == "http"][0]
    assert any(d.name == "proxy_cache_path" for d in http.block), \
        "conf/nginx.conf's http{} does not include views-http.conf"


def test_no_route_is_internal():
    for r in load_routes():
        assert not r.path.startswith(("/internal/", "/_part/")), r.where
