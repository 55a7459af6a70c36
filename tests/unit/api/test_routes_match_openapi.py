"""The spec (schemas/api/openapi.yaml) and the edge declare the same routes.

The edge's routes are the `encore_routes { ... }` block of conf/routes.conf
(ngx_modules/route), one route a statement, as the comment at the top of
that file documents:

    METHOD  PATH  NAME  UPSTREAM  POLICY  [key=value ...];

Compared: the set of (METHOD, path template) pairs, each route's policy
(POLICY vs the operation's x-encore-policy) and each route's NAME (vs the
operationId). HEAD and OPTIONS are implicit on both sides and listed on
neither.

The operational routes (GET /healthz, /readyz, /metrics, /metrics/{worker})
are not under /api/ and are served by plain nginx locations (nginx.conf,
conf/ops.conf) rather than by the route module. They are handled
explicitly: each one the routes file does not declare must be answered by
a public (not `internal`) location that nginx would pick for its path,
starting from conf/nginx.conf with its includes; and every such location
outside the route module must be one of them.

ENCORE_ROUTES_FILE overrides the routes file's path (for trying a draft).
"""
import glob
import os
import re
from collections import namedtuple

import pytest

from openapi_support import POLICIES, ROOT, load_spec, operations

CONF_DIR = os.path.join(ROOT, "conf")
ROUTES_FILE = os.environ.get("ENCORE_ROUTES_FILE", os.path.join(CONF_DIR, "routes.conf"))
OPERATIONAL = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
               ("GET", "/metrics/{worker}")}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
IMPLICIT = ("HEAD", "OPTIONS")
NAME_RE = re.compile(r"^[a-z0-9_]+$")
PARAM_RE = re.compile(r"\{([^}]*)\}")

Route = namedtuple("Route", "method path name upstream policy options where")
Directive = namedtuple("Directive", "name args block where")


class ConfError(Exception):
    pass


def rel(path):
    r = os.path.relpath(path, ROOT)
    return path if r.startswith("..") else r


# ---- an nginx-syntax reader ------------------------------------------------------


def unescape(c):
    r"""What nginx makes of a backslash before c: before a quote or a
    backslash it goes, \t \r \n become control characters, and anything else
    (a regex's \.) keeps it."""
    return {"\"": "\"", "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}.get(c, "\\" + c)


def tokenize(text, filename):
    """nginx's lexer (ngx_conf_read_token), enough for our files. Yields
    (token, line, is_special); special tokens are "{", "}" and ";".

    As in nginx: "#" starts a comment and "..." / '...' a string only at the
    start of a token; a backslash escapes the next character; a word ends at
    whitespace, ";" or "{" (but "${" is a variable), while "}" inside a word
    is part of it. So an unquoted /a/{id} is the word "/a/" and a block."""
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            yield c, line, True
            i += 1
        elif c in "\"'":
            start, j, buf = line, i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    buf.append(unescape(text[j + 1]))
                    j += 2
                    continue
                if text[j] == "\n":
                    line += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise ConfError("%s:%d: unterminated string" % (filename, start))
            j += 1
            if j < n and not (text[j].isspace() or text[j] in ";{"):
                raise ConfError("%s:%d: unexpected %r after a quoted string" % (filename, line, text[j]))
            yield "".join(buf), start, False
            i = j
        else:
            j, buf = i, []
            while j < n and not text[j].isspace() and text[j] not in ";{":
                if text[j] == "\\" and j + 1 < n:
                    buf.append(unescape(text[j + 1]))
                    j += 2
                    continue
                if text[j] == "$" and j + 1 < n and text[j + 1] == "{":
                    close = text.find("}", j)
                    if close < 0:
                        raise ConfError("%s:%d: unterminated ${" % (filename, line))
                    buf.append(text[j:close + 1])
                    j = close + 1
                    continue
                buf.append(text[j])
                j += 1
            yield "".join(buf), line, False
            i = j


def parse_conf(text, filename, include_dir=None):
    """[Directive] with nested blocks. With include_dir, `include NAME`
    of a file in that directory (a glob) is read in place; includes of
    other places (absolute paths, @RUN_DIR@ templates) are left as they
    are."""
    toks = list(tokenize(text, filename))
    pos = 0

    def block(depth, parent=None):
        nonlocal pos
        out, words, first = [], [], None
        while pos < len(toks):
            tok, line, special = toks[pos]
            pos += 1
            if not special:
                if not words:
                    first = line
                words.append(tok)
            elif tok == ";":
                if not words:
                    raise ConfError("%s:%d: unexpected \";\"" % (filename, line))
                out.extend(expand(Directive(words[0], words[1:], None,
                                            "%s:%d" % (filename, first))))
                words = []
            elif tok == "{":
                if not words:
                    raise ConfError("%s:%d: unexpected \"{\"" % (filename, line))
                if parent == "encore_routes":
                    # what nginx says too: a route line cannot open a block
                    raise ConfError(
                        "%s:%d: unexpected \"{\" after %r: nginx ends a word at \"{\", so a "
                        "template with {param} must be quoted (\"/a/{id}\")"
                        % (filename, line, " ".join(words)))
                d = Directive(words[0], words[1:], None, "%s:%d" % (filename, first))
                out.append(d._replace(block=block(depth + 1, words[0])))
                words = []
            else:  # "}"
                if words:
                    raise ConfError("%s:%d: unexpected \"}\" (a missing \";\"?)" % (filename, line))
                if depth == 0:
                    raise ConfError("%s:%d: unexpected \"}\"" % (filename, line))
                return out
        if words:
            raise ConfError("%s: unexpected end of file (a missing \";\"?)" % filename)
        if depth:
            raise ConfError("%s: unexpected end of file, expecting \"}\"" % filename)
        return out

    def expand(d):
        if include_dir is None or d.name != "include" or len(d.args) != 1:
            return [d]
        arg = d.args[0]
        if os.path.isabs(arg) or "@" in arg:
            return [d]
        out = []
        for path in sorted(glob.glob(os.path.join(include_dir, arg))):
            with open(path, encoding="utf-8") as f:
                out.extend(parse_conf(f.read(), rel(path), include_dir))
        return out

    return block(0)


def walk(directives):
    for d in directives:
        yield d
        if d.block:
            yield from walk(d.block)


# ---- the routes file ------------------------------------------------------------------


def parse_routes(text, filename):
    """The routes of every `encore_routes { }` block; ConfError names the
    file and line of anything that is not the documented format."""
    blocks = [d for d in walk(parse_conf(text, filename)) if d.name == "encore_routes"]
    if not blocks:
        raise ConfError("%s: no encore_routes { ... } block" % filename)
    routes, seen, names = [], {}, {}
    for b in blocks:
        if b.args or b.block is None:
            raise ConfError("%s: encore_routes takes no arguments and a block" % b.where)
        for d in b.block:
            if d.block is not None:
                raise ConfError("%s: a block inside encore_routes" % d.where)
            words = [d.name] + d.args
            if len(words) < 5:
                raise ConfError("%s: expected METHOD PATH NAME UPSTREAM POLICY, got %r"
                                % (d.where, " ".join(words)))
            method, path, name, upstream, policy = words[:5]
            if method in IMPLICIT:
                raise ConfError("%s: %s is implicit, not declared" % (d.where, method))
            if method not in METHODS:
                raise ConfError("%s: unknown method %r" % (d.where, method))
            if not path.startswith("/"):
                raise ConfError("%s: path %r does not start with /" % (d.where, path))
            if not NAME_RE.match(name):
                raise ConfError("%s: route name %r is not [a-z0-9_]" % (d.where, name))
            if policy not in POLICIES:
                raise ConfError("%s: policy %r is not one of %s" % (d.where, policy, "|".join(POLICIES)))
            options = {}
            for opt in words[5:]:
                key, eq, value = opt.partition("=")
                if not eq or not key:
                    raise ConfError("%s: option %r is not key=value" % (d.where, opt))
                options[key] = value
            if (method, path) in seen:
                raise ConfError("%s: %s %s already declared at %s"
                                % (d.where, method, path, seen[(method, path)]))
            if name in names:
                raise ConfError("%s: route name %s already used at %s" % (d.where, name, names[name]))
            seen[(method, path)] = names[name] = d.where
            routes.append(Route(method, path, name, upstream, policy, options, d.where))
    return routes


def load_routes():
    with open(ROUTES_FILE, encoding="utf-8") as f:
        return parse_routes(f.read(), rel(ROUTES_FILE))


# ---- nginx's location choice ---------------------------------------------------------


Location = namedtuple("Location", "modifier pattern directives where")


def server_locations():
    """The top-level locations of the server{} in conf/nginx.conf, includes
    of conf/ read in place, in file order."""
    path = os.path.join(CONF_DIR, "nginx.conf")
    with open(path, encoding="utf-8") as f:
        tree = parse_conf(f.read(), rel(path), CONF_DIR)
    servers = [d for d in walk(tree) if d.name == "server" and d.block is not None]
    assert len(servers) == 1, "conf/nginx.conf: expected one server{}, found %d" % len(servers)
    out = []
    for d in servers[0].block:
        if d.name != "location" or d.block is None:
            continue
        if len(d.args) == 1:
            mod, pattern = "", d.args[0]
        elif len(d.args) == 2:
            mod, pattern = d.args
        else:
            raise ConfError("%s: location with %d arguments" % (d.where, len(d.args)))
        out.append(Location(mod, pattern, {x.name: x.args for x in d.block}, d.where))
    return out


def choose_location(locations, uri):
    """The location nginx picks for uri: an exact match; else the longest
    prefix, if it is ^~; else the first matching regex; else the longest
    prefix."""
    for loc in locations:
        if loc.modifier == "=" and loc.pattern == uri:
            return loc
    prefixes = [loc for loc in locations
                if loc.modifier in ("", "^~") and not loc.pattern.startswith("@")
                and uri.startswith(loc.pattern)]
    longest = max(prefixes, key=lambda loc: len(loc.pattern), default=None)
    if longest is not None and longest.modifier == "^~":
        return longest
    for loc in locations:
        if loc.modifier in ("~", "~*"):
            flags = re.IGNORECASE if loc.modifier == "~*" else 0
            if re.search(loc.pattern, uri, flags):
                return loc
    return longest


def sample_uri(template):
    return PARAM_RE.sub(lambda m: {"worker": "auth"}.get(m.group(1), "0d6c8a34-1b9e-4f57-8a7a-3c0b2f1e9d42"),
                        template)


def is_route_module(loc):
    return loc.directives.get("encore_route") == ["on"]


# ---- the spec ------------------------------------------------------------------------


def spec_routes():
    return {(m, p): op for m, p, op in operations(load_spec())}


def fmt_pair(pair):
    return "%-7s %-38s" % pair


def normalized(path):
    return PARAM_RE.sub("{}", path)


# ---- the parser itself --------------------------------------------------------------

SAMPLE = """\
# a comment; with { braces } that mean nothing
encore_route_location @api;
encore_routes {
    GET     /api/v1/things              things_list   encore_x  public;   # trailing comment
    POST    /api/v1/things              things_create encore_x  user  location=@big;
    PATCH   "/api/v1/things/{id}"       things_patch  encore_x
            moderator;
}
location @big { client_max_body_size 1m; }
"""


def test_parser_reads_the_documented_format():
    routes = parse_routes(SAMPLE, "sample.conf")
    assert [(r.method, r.path, r.name, r.upstream, r.policy, r.options) for r in routes] == [
        ("GET", "/api/v1/things", "things_list", "encore_x", "public", {}),
        ("POST", "/api/v1/things", "things_create", "encore_x", "user", {"location": "@big"}),
        ("PATCH", "/api/v1/things/{id}", "things_patch", "encore_x", "moderator", {}),
    ]
    assert routes[0].where == "sample.conf:4" and routes[2].where == "sample.conf:6"


@pytest.mark.parametrize("line,message", [
    ("HEAD /a a_head encore_x public;", "sample.conf:2: HEAD is implicit"),
    ("FETCH /a a encore_x public;", "sample.conf:2: unknown method 'FETCH'"),
    ("GET /a a encore_x;", "sample.conf:2: expected METHOD PATH NAME UPSTREAM POLICY"),
    ("GET /a a encore_x root;", "sample.conf:2: policy 'root' is not one of"),
    ("GET a a encore_x public;", "sample.conf:2: path 'a' does not start with /"),
    ("GET /a A encore_x public;", "sample.conf:2: route name 'A' is not [a-z0-9_]"),
    ("GET /a a encore_x public location;", "sample.conf:2: option 'location' is not key=value"),
    ("GET /a a encore_x public;\n GET /a b encore_x public;", "sample.conf:3: GET /a already declared at sample.conf:2"),
    ("GET /a a encore_x public;\n POST /a a encore_x public;", "sample.conf:3: route name a already used"),
    ("GET /a a encore_x public", "a missing \";\""),
])
def test_parser_names_file_and_line_of_errors(line, message):
    with pytest.raises(ConfError) as e:
        parse_routes("encore_routes {\n %s\n}\n" % line, "sample.conf")
    assert message in str(e.value)


def test_location_choice_follows_nginx():
    conf = """server {
        location = /healthz { return 200; }
        location ~ "^/metrics/([a-z0-9_-]+)$" { proxy_pass x; }
        location ^~ /_error/ { internal; }
        location /api/ { encore_route on; }
        location / { root web; }
    }"""
    tree = parse_conf(conf, "t.conf")
    locs = [Location(*(d.args if len(d.args) == 2 else [""] + d.args),
                     {x.name: x.args for x in d.block}, d.where) for d in tree[0].block]
    pick = lambda uri: choose_location(locs, uri).pattern
    assert pick("/healthz") == "/healthz"
    assert pick("/healthz/") == "/"
    assert pick("/metrics/auth") == "^/metrics/([a-z0-9_-]+)$"
    assert pick("/metrics") == "/"
    assert pick("/api/v1/x") == "/api/"
    assert pick("/_error/404") == "/_error/"


# ---- parity ------------------------------------------------------------------------


def test_routes_file_declares_routes():
    routes = load_routes()
    assert len(routes) > 0, "%s declares no route" % rel(ROUTES_FILE)


def test_spec_and_routes_file_declare_the_same_routes():
    routes = {(r.method, r.path): r for r in load_routes()}
    spec = spec_routes()
    # operational routes the routes file leaves to plain locations are
    # checked by test_operational_routes_are_served
    expected = {k: v for k, v in spec.items() if k not in OPERATIONAL or k in routes}
    only_spec = sorted(set(expected) - set(routes), key=lambda k: (k[1], k[0]))
    only_file = sorted(set(routes) - set(expected), key=lambda k: (k[1], k[0]))
    if not only_spec and not only_file:
        return
    lines = ["schemas/api/openapi.yaml and %s declare different routes:" % rel(ROUTES_FILE)]
    hint = {}
    for a in only_spec:
        for b in only_file:
            if a[0] == b[0] and normalized(a[1]) == normalized(b[1]):
                hint[a] = hint[b] = "the same path with other {param} names"
    if only_spec:
        lines.append("  missing in %s (declared in the spec):" % rel(ROUTES_FILE))
        for k in only_spec:
            op = spec[k]
            lines.append("    - %s   operationId %s, x-encore-policy %s%s" % (
                fmt_pair(k), op.get("operationId"), op.get("x-encore-policy"),
                "   (%s)" % hint[k] if k in hint else ""))
    if only_file:
        lines.append("  missing in the spec (declared in %s):" % rel(ROUTES_FILE))
        for k in only_file:
            r = routes[k]
            lines.append("    + %s   %s, name %s, policy %s%s" % (
                fmt_pair(k), r.where, r.name, r.policy,
                "   (%s)" % hint[k] if k in hint else ""))
    pytest.fail("\n".join(lines), pytrace=False)


def test_routes_file_routes_reach_the_route_module():
    """nginx hands each declared route's path to a location with
    `encore_route on` (else the table entry is dead)."""
    locations = server_locations()
    dead = []
    for r in load_routes():
        loc = choose_location(locations, sample_uri(r.path))
        if loc is None or not is_route_module(loc):
            dead.append("    %s   %s: nginx picks %s" % (
                fmt_pair((r.method, r.path)), r.where,
                "no location" if loc is None else "location %s %s (%s)" % (
                    loc.modifier, loc.pattern, loc.where)))
    if dead:
        pytest.fail("routes no `encore_route on` location receives:\n%s" % "\n".join(dead),
                    pytrace=False)


def test_spec_and_routes_file_agree_on_policies():
    spec = spec_routes()
    mismatches = []
    for r in load_routes():
        op = spec.get((r.method, r.path))
        if op is not None and op.get("x-encore-policy") != r.policy:
            mismatches.append("    %s   %s: %s, spec (operationId %s): %s" % (
                fmt_pair((r.method, r.path)), r.where, r.policy, op.get("operationId"),
                op.get("x-encore-policy")))
    if mismatches:
        pytest.fail("policy mismatch between %s and the spec's x-encore-policy:\n%s"
                    % (rel(ROUTES_FILE), "\n".join(mismatches)), pytrace=False)


def route_locations():
    """{name: {directive: args}} of the named locations of the routes file
    (the ones a route continues in), and the default one's name."""
    with open(ROUTES_FILE, encoding="utf-8") as f:
        top = parse_conf(f.read(), rel(ROUTES_FILE))
    named = {d.args[0]: {c.name: c.args for c in d.block}
             for d in top if d.name == "location" and d.block is not None
             and len(d.args) == 1 and d.args[0].startswith("@")}
    default = [d.args[0] for d in top if d.name == "encore_route_location"]
    return named, default[0] if default else None


def test_rate_limited_routes_list_429():
    """An operation lists 429 exactly when its route continues in a
    location with limit_req (login's bucket: register, login, refresh, and
    the /users/me routes that check a password): Schemathesis found the
    /users/me ones answering an undocumented 429."""
    spec = spec_routes()
    named, default = route_locations()
    problems = []
    for r in load_routes():
        op = spec.get((r.method, r.path))
        loc = r.options.get("location", default)
        if op is None or loc not in named:
            continue
        limited = "limit_req" in named[loc]
        if limited != ("429" in op["responses"]):
            problems.append("    %s   %s: location %s %s limit_req, the spec %s 429" % (
                fmt_pair((r.method, r.path)), r.where, loc, "has" if limited else "has no",
                "lists no" if limited else "lists"))
    if problems:
        pytest.fail("rate limits differ between %s and the spec:\n%s"
                    % (rel(ROUTES_FILE), "\n".join(problems)), pytrace=False)


def test_route_names_are_the_operation_ids():
    """A route's NAME ($encore_route, the access log, the metrics label) is
    its operationId, so logs, metrics and the spec name routes alike."""
    spec = spec_routes()
    mismatches = []
    for r in load_routes():
        op = spec.get((r.method, r.path))
        if op is not None and op.get("operationId") != r.name:
            mismatches.append("    %s   %s: name %s, spec: operationId %s" % (
                fmt_pair((r.method, r.path)), r.where, r.name, op.get("operationId")))
    for loc in server_locations():
        name = loc.directives.get("encore_metrics_route")
        if not name or is_route_module(loc):
            continue
        for pair in OPERATIONAL:
            if getattr(choose_location(server_locations(), sample_uri(pair[1])), "where", None) == loc.where:
                op_id = spec.get(pair, {}).get("operationId")
                if op_id != name[0]:
                    mismatches.append("    %s   %s: encore_metrics_route %s, spec: operationId %s"
                                      % (fmt_pair(pair), loc.where, name[0], op_id))
    if mismatches:
        pytest.fail("route names differ from the spec's operationIds:\n%s" % "\n".join(mismatches),
                    pytrace=False)


def test_operational_routes_are_served():
    spec = spec_routes()
    ops_in_spec = {k for k, op in spec.items() if "Operations" in op.get("tags", [])}
    assert ops_in_spec == OPERATIONAL, "the spec's Operations routes are %s, expected %s" % (
        sorted(ops_in_spec), sorted(OPERATIONAL))
    declared = {(r.method, r.path) for r in load_routes()}
    locations = server_locations()
    problems = []
    for pair in sorted(OPERATIONAL - declared):
        uri = sample_uri(pair[1])
        loc = choose_location(locations, uri)
        if loc is None:
            problems.append("    %s   no location answers %s" % (fmt_pair(pair), uri))
        elif "internal" in loc.directives:
            problems.append("    %s   %s answers %s but is internal" % (fmt_pair(pair), loc.where, uri))
        elif is_route_module(loc):
            problems.append("    %s   %s hands %s to the route module, whose table lacks it"
                            % (fmt_pair(pair), loc.where, uri))
        elif loc.modifier == "" and loc.pattern == "/":
            problems.append("    %s   only the web UI's location / answers %s" % (fmt_pair(pair), uri))
    # and no other public location outside the route module and the web UI
    served = {getattr(choose_location(locations, sample_uri(p[1])), "where", None)
              for p in OPERATIONAL - declared}
    for loc in locations:
        # the edge agent's feed (REVOKE-SPEC.md) is no public route: loopback
        # only, by the location's allow/deny and by its handler
        if ("internal" in loc.directives or is_route_module(loc) or loc.pattern.startswith("@")
                or (loc.modifier == "" and loc.pattern == "/") or loc.where in served
                or "encore_jwt_revocations" in loc.directives
                # the web UI's files (its built assets): no API route
                or loc.directives.get("root") == ["@WEB_ROOT@"]):
            continue
        problems.append("    %s   location %s %s is in no spec route" % (
            "", loc.modifier, loc.pattern))
    if problems:
        pytest.fail("operational routes (spec vs conf/nginx.conf and its includes):\n%s"
                    % "\n".join(problems), pytrace=False)
