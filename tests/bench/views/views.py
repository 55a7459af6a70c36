#!/usr/bin/env python3
"""tests/bench/views helper: the njs peer's configuration, the plans, the report.

    views.py conf CONF_DIR BENCH_DIR SUBREQ_BUFFER
        reads the views of CONF_DIR (the stack's rendered conf/: the
        `location @view_*` blocks and their encore_aggregate_part lines,
        the views' routes in routes.conf) and writes into BENCH_DIR:
        views.js (tests/bench/views/views.js with the views filled in),
        server.d/bench.conf (the njs locations and the parts' bench
        entrance) and views.json (what `plan` needs)
    views.py plan BENCH_DIR EDGE_URL
        picks the demo data's post and artist, resolves every part's URI
        (stage 2 from stage 1's answers, as the module does), writes one
        plan file per case into BENCH_DIR/plans/ and checks every case
        answers 200, the njs views answer what the module's do, and the
        internal part locations are 404 from outside
    views.py report RAW_TSV MACHINE_TXT
        the tables (markdown) on stdout

Standard library only.
"""

import json
import os
import re
import statistics
import sys
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

DEFAULT_TIMEOUT_MS = 5000
DEFAULT_MAX_SIZE = 4 * 1024 * 1024
DEFAULT_MAX_ITEMS = 20


# ---- nginx configuration ----------------------------------------------------

def tokenize(text):
    toks, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            toks.append(c)
            i += 1
        elif c in "\"'":
            j = i + 1
            buf = []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            toks.append(("q", "".join(buf)))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};":
                if text[j] == "$" and j + 1 < n and text[j + 1] == "{":
                    j = text.index("}", j) + 1   # ${var}
                    continue
                j += 1
            toks.append(text[i:j])
            i = j
    return toks


def parse(toks, pos=0):
    """[(args, children or None)], pos"""
    out, cur = [], []
    while pos < len(toks):
        t = toks[pos]
        pos += 1
        if t == ";":
            out.append(([a[1] if isinstance(a, tuple) else a for a in cur], None))
            cur = []
        elif t == "{":
            children, pos = parse(toks, pos)
            out.append(([a[1] if isinstance(a, tuple) else a for a in cur], children))
            cur = []
        elif t == "}":
            return out, pos
        else:
            cur.append(t)
    return out, pos


def walk(tree):
    for args, children in tree:
        yield args, children
        if children:
            yield from walk(children)


def nginx_time_ms(v):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", v)
    if not m:
        sys.exit("views.py: cannot read the time %r" % v)
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, None: 1000}[m.group(2)]


def nginx_size(v):
    m = re.fullmatch(r"(\d+)([kKmMgG])?", v)
    if not m:
        sys.exit("views.py: cannot read the size %r" % v)
    return int(m.group(1)) * {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[
        (m.group(2) or "").lower() or None]


def split_template(uri):
    """literal pieces (nginx variables kept) and {part.path} references"""
    pieces, i = [], 0
    for m in re.finditer(r"(?<!\$)\{([a-z_][a-z0-9_]*)\.([A-Za-z0-9_.]+)\}", uri):
        if m.start() > i:
            pieces.append(uri[i:m.start()])
        pieces.append({"part": m.group(1), "path": m.group(2).split(".")})
        i = m.end()
    if i < len(uri):
        pieces.append(uri[i:])
    return pieces


def read_views(conf_dir):
    trees = {}
    for f in sorted(os.listdir(conf_dir)):
        if f.endswith(".conf"):
            with open(os.path.join(conf_dir, f)) as fh:
                trees[f] = parse(tokenize(fh.read()))[0]

    defaults = {"encore_aggregate_timeout": DEFAULT_TIMEOUT_MS,
                "encore_aggregate_max_part_size": DEFAULT_MAX_SIZE,
                "encore_aggregate_max_items": DEFAULT_MAX_ITEMS}

    def setting(name, v):
        if name == "encore_aggregate_timeout":
            return nginx_time_ms(v)
        if name == "encore_aggregate_max_part_size":
            return nginx_size(v)
        return int(v)

    # http/server-level settings: outside any view location
    views, routes = {}, {}
    for f, tree in trees.items():
        for args, children in tree:
            if args and args[0] in defaults and children is None:
                defaults[args[0]] = setting(args[0], args[1])

    for f, tree in trees.items():
        for args, children in walk(tree):
            if args[:1] == ["encore_routes"] and children is not None:
                for r in children:
                    a = r[0]
                    loc = [x[len("location="):] for x in a if x.startswith("location=")]
                    if a and a[0] == "GET" and loc and loc[0].startswith("@view_"):
                        routes[loc[0]] = a[1]
            if (args[:1] == ["location"] and len(args) == 2
                    and args[1].startswith("@view_") and children is not None):
                views[args[1]] = children

    if not views:
        sys.exit("views.py: no `location @view_*` in %s" % conf_dir)

    # maps of a route parameter (a view's id check): the njs locations get
    # copies keyed on their own parameter variables
    maps = []
    for f, tree in trees.items():
        for args, children in walk(tree):
            if (args[:1] == ["map"] and len(args) == 3 and children is not None
                    and args[1].startswith("$encore_param_")):
                maps.append((args, children))

    out = {}
    for loc, children in views.items():
        if loc not in routes:
            sys.exit("views.py: no GET route names %s" % loc)
        local = dict(defaults)
        for args, sub in children:
            if args and args[0] in local:
                local[args[0]] = setting(args[0], args[1])
        parts, other = [], []
        for args, sub in children:
            if not args:
                continue
            if args[0] == "encore_aggregate_part":
                parts.append(args[1:])
            elif not args[0].startswith("encore_aggregate"):
                other.append((args, sub))
        spec = []
        for a in parts:
            p = {"name": a[0], "template": a[1], "main": False, "required": False,
                 "timeout": local["encore_aggregate_timeout"],
                 "max_size": local["encore_aggregate_max_part_size"],
                 "max_items": local["encore_aggregate_max_items"],
                 "pick": None, "fields": None, "deny": None, "key": a[0].split("."),
                 "merge": False}
            for o in a[2:]:
                k, _, v = o.partition("=")
                if o == "main":
                    p["main"] = True
                elif o == "required":
                    p["required"] = True
                elif o == "merge":
                    p["merge"] = True
                elif k == "timeout":
                    p["timeout"] = nginx_time_ms(v)
                elif k == "max_size":
                    p["max_size"] = nginx_size(v)
                elif k == "max_items":
                    p["max_items"] = int(v)
                elif k == "pick":
                    p["pick"] = v.split(".")
                elif k in ("fields", "deny"):
                    p[k] = v.split(",")
                elif k == "key":
                    p["key"] = v.split(".")
                else:
                    sys.exit("views.py: %s: part %s: unknown option %r" % (loc, a[0], o))
            p["uri"] = split_template(a[1])
            p["stage"] = 2 if any(isinstance(x, dict) for x in p["uri"]) else 1
            spec.append(p)
        out[loc[len("@view_"):]] = {"route": routes[loc], "parts": spec,
                                    "directives": other}
    return out, maps


def rename(text, names):
    """$encore_param_X -> $bench_param_X, and the maps' variables"""
    text = re.sub(r"\$(\{?)encore_param_", r"$\1bench_param_", text)
    for n in names:
        text = re.sub(r"\$(\{?)%s\b" % re.escape(n), r"$\1bench_%s" % n, text)
    return text


def serialize(stmts, names, indent):
    lines = []
    for args, children in stmts:
        words = " ".join(quote(rename(a, names)) for a in args)
        if children is None:
            lines.append(indent + words + ";")
        else:
            lines.append(indent + words + " {")
            lines.extend(serialize(children, names, indent + "    "))
            lines.append(indent + "}")
    return lines


def cmd_conf(conf_dir, bench, subreq_buffer):
    views, maps = read_views(conf_dir)
    names = [m[0][2][1:] for m in maps]

    njs = {}
    for name, v in views.items():
        parts = []
        for p in v["parts"]:
            q = {k: p[k] for k in ("name", "stage", "main", "required", "timeout",
                                   "max_size", "max_items", "pick", "fields",
                                   "deny", "key", "merge")}
            q["uri"] = [rename(x, names) if isinstance(x, str) else x
                        for x in p["uri"]]
            parts.append(q)
        njs[name] = {"parts": parts}

    with open(os.path.join(HERE, "views.js")) as f:
        js = f.read()
    text = json.dumps(njs, separators=(",", ":"))
    if "'" in text or "\\" in text:
        sys.exit("views.py: a view's spec holds a quote or a backslash")
    with open(os.path.join(bench, "views.js"), "w") as f:
        f.write(js.replace("@VIEWS@", text))

    lines = [
        "# generated by tests/bench/views/views.py: the bench's own locations",
        "js_path    %s;" % bench,
        "js_import  views from views.js;",
        "# njs reads a part's answer into one buffer of this size (allocated",
        "# whole per subrequest); the module's capture grows as data comes",
        "subrequest_output_buffer_size  %s;" % subreq_buffer,
        "",
        "# each part alone, through the same internal location the views use",
        "# (a rewrite is an internal redirect: `internal` lets it in)",
        "location /_bench/part/ {",
        "    rewrite  ^/_bench/part(/_part/.*)$  $1  last;",
        "    return   404;",
        "}",
    ]
    for name, v in views.items():
        params = re.findall(r"\{([a-z_][a-z0-9_]*)\}", v["route"])
        rx = re.sub(r"\{[a-z_][a-z0-9_]*\}", "([^/]+)", re.escape(v["route"]).replace(r"\{", "{").replace(r"\}", "}"))
        lines.append("")
        lines.append("# the %s view in njs: @view_%s's directives, js_content for its parts" % (name, name))
        lines.append("location ~ ^/_bench/njs%s$ {" % rx)
        lines.append("    set  $bench_view  %s;" % name)
        for i, p in enumerate(params, 1):
            lines.append("    set  $bench_param_%s  $%d;" % (p, i))
        lines.extend(serialize(v["directives"], names, "    "))
        lines.append("    js_content  views.view;")
        lines.append("}")
    os.makedirs(os.path.join(bench, "server.d"), exist_ok=True)
    with open(os.path.join(bench, "server.d", "bench.conf"), "w") as f:
        f.write("\n".join(lines) + "\n")

    lines = ["# generated by tests/bench/views/views.py: the views' maps of a",
             "# route parameter, keyed on the njs locations' own"]
    lines.extend(serialize(maps, names, ""))
    os.makedirs(os.path.join(bench, "http.d"), exist_ok=True)
    with open(os.path.join(bench, "http.d", "bench.conf"), "w") as f:
        f.write("\n".join(lines) + "\n")

    for v in views.values():
        del v["directives"]
    with open(os.path.join(bench, "views.json"), "w") as f:
        json.dump(views, f, indent=1)


def quote(x):
    return x if re.fullmatch(r"[^\s;{}\"'#]+", x) else '"%s"' % x.replace('"', '\\"')


# ---- plans ----------------------------------------------------------------------

def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_json(url):
    status, _, body = get(url)
    if status != 200:
        sys.exit("views.py: %s answered %d: %s" % (url, status, body[:300]))
    return json.loads(body)


def enc(v):
    if isinstance(v, bool):
        v = "true" if v else "false"
    return urllib.parse.quote(str(v), safe="-._~")


def ref_text(v, max_items):
    if isinstance(v, (str, int, float, bool)):
        return enc(v)
    if not isinstance(v, list):
        return None
    out = []
    for x in v[:max_items]:
        if not isinstance(x, (str, int, float, bool)):
            return None
        out.append(enc(x))
    return ",".join(out)


def lookup(doc, path):
    for k in path:
        if not isinstance(doc, dict) or k not in doc:
            return None
        doc = doc[k]
    return doc


def expand(text, params):
    def var(m):
        n = m.group(1) or m.group(2)
        if n.startswith("encore_param_") and n[len("encore_param_"):] in params:
            return params[n[len("encore_param_"):]]
        if n in ("args", "is_args") or n.startswith("arg_"):
            return ""       # the bench's view requests carry no arguments
        sys.exit("views.py: the plan cannot expand $%s" % n)
    return re.sub(r"\$\{([a-z0-9_]+)\}|\$([a-z0-9_]+)", var, text)


def public_calls(uri):
    """what a client calls for a part: its worker path through the edge"""
    m = re.fullmatch(r"/_part/([a-z]+)(/.*)", uri)
    if not m:
        sys.exit("views.py: part URI %s is not under /_part/<worker>/" % uri)
    path = m.group(2)
    if path.startswith("/api/"):
        return [path]
    m = re.fullmatch(r"/internal/artists\?ids=([^&]*)", path)
    if m:
        # no public batch read: one GET /api/v1/artists/{id} per id
        return ["/api/v1/artists/" + i for i in m.group(1).split(",") if i]
    sys.exit("views.py: part %s has no public equivalent the plan knows" % uri)


def ordered(body):
    return json.loads(body, object_pairs_hook=lambda kv: [list(x) for x in kv])


def cmd_plan(bench, edge):
    with open(os.path.join(bench, "views.json")) as f:
        views = json.load(f)
    plans = os.path.join(bench, "plans")
    os.makedirs(plans, exist_ok=True)

    # the demo data: the post naming the most artists (then the most
    # comments), the artist of the demo posts with the most albums
    posts = get_json(edge + "/api/v1/posts?limit=50")["items"]
    if not posts:
        sys.exit("views.py: no published post: load the demo data (auto/demo-data)")

    def ncomments(p):
        return len(get_json(edge + "/api/v1/posts/%s/comments?limit=100" % p["id"])["items"])
    post = max(posts, key=lambda p: (len(p["artist_ids"]), ncomments(p), p["id"]))
    artist_ids = sorted({a for p in posts for a in p["artist_ids"]})
    nalbums = {a: len(get_json(edge + "/api/v1/artists/%s/albums?limit=100" % a)["items"])
               for a in artist_ids}
    artist = max(artist_ids, key=lambda a: (nalbums[a], a))
    ids = {"post": post["id"], "artist": artist}

    cases = []          # view, case, mode, plan file
    summary = {}
    for name, v in views.items():
        params = {}
        for pname in re.findall(r"\{([a-z_][a-z0-9_]*)\}", v["route"]):
            if name not in ids:
                sys.exit("views.py: no demo id for the %s view's {%s}" % (name, pname))
            params[pname] = ids[name]
        route = re.sub(r"\{[a-z_][a-z0-9_]*\}", lambda m: params[m.group(0)[1:-1]], v["route"])

        answers, resolved = {}, []
        for stage in (1, 2):
            for p in v["parts"]:
                if p["stage"] != stage:
                    continue
                uri, skip = "", None
                for x in p["uri"]:
                    if isinstance(x, str):
                        uri += expand(x, params)
                        continue
                    t = ref_text(lookup(answers.get(x["part"]), x["path"]), p["max_items"])
                    if t is None:
                        sys.exit("views.py: %s: part %s: {%s.%s} has no value"
                                 % (name, p["name"], x["part"], ".".join(x["path"])))
                    if t == "":
                        skip = "empty"
                        break
                    uri += t
                if skip:
                    continue
                answers[p["name"]] = get_json(edge + "/_bench/part" + uri)
                resolved.append((p["name"], stage, uri))

        def plan(case, lines):
            fn = os.path.join(plans, "%s.%s" % (name, case))
            with open(fn, "w") as f:
                f.write("".join("%d %s\n" % l for l in lines))
            return fn

        cases.append((name, "view", "seq", plan("view", [(1, route)])))
        cases.append((name, "njs", "seq", plan("njs", [(1, "/_bench/njs" + route)])))
        calls = [(stage, c) for _, stage, uri in resolved for c in public_calls(uri)]
        cases.append((name, "client_seq", "seq", plan("client", calls)))
        cases.append((name, "client_par", "par", plan("client", calls)))
        for pname, stage, uri in resolved:
            cases.append((name, "part:%s:%d" % (pname, stage), "seq",
                          plan("part-" + pname, [(1, "/_bench/part" + uri)])))

        # every case answers 200, and the njs view what the module's does
        for _, lines in [(None, [(1, route)]), (None, [(1, "/_bench/njs" + route)])] + \
                [(None, [(1, c)]) for _, c in calls] + \
                [(None, [(1, "/_bench/part" + u)]) for _, _, u in resolved]:
            st, _, body = get(edge + lines[0][1])
            if st != 200:
                sys.exit("views.py: %s answered %d: %s" % (lines[0][1], st, body[:300]))
        st, mh, mbody = get(edge + route)
        st2, nh, nbody = get(edge + "/_bench/njs" + route)
        for h, b, who in ((mh, mbody, "the module"), (nh, nbody, "njs")):
            if "X-Encore-Partial" in h or b'"errors"' in b:
                sys.exit("views.py: %s's %s view is partial: %s %s"
                         % (who, name, h.get("X-Encore-Partial"), b[:300]))
        # njs 0.7.9's objects do not keep their members' order: the view's
        # own members must be in the same order, a part's may differ
        if ([k for k, _ in ordered(mbody)] != [k for k, _ in ordered(nbody)]
                or json.loads(mbody) != json.loads(nbody)):
            with open(os.path.join(bench, "%s.module.json" % name), "wb") as f:
                f.write(mbody)
            with open(os.path.join(bench, "%s.njs.json" % name), "wb") as f:
                f.write(nbody)
            sys.exit("views.py: the njs %s view differs from the module's (%s/%s.{module,njs}.json)"
                     % (name, bench, name))
        summary[name] = {
            "route": route,
            "parts": [[p, s, u] for p, s, u in resolved],
            "client_calls": len(calls),
            "bytes": len(mbody),
            "same_bytes": mbody == nbody,
            "same_etag": mh.get("ETag") == nh.get("ETag"),
        }
        # 304 for the view's own ETag, from both
        for url, h in ((route, mh), ("/_bench/njs" + route, nh)):
            st, _, _ = get(edge + url, {"If-None-Match": h.get("ETag", "")})
            if st != 304:
                sys.exit("views.py: %s answered %d to its own ETag, want 304" % (url, st))

        # the parts' locations are internal
        for _, _, u in resolved:
            st, _, _ = get(edge + u)
            if st != 404:
                sys.exit("views.py: %s answered %d from outside, want 404" % (u, st))

    with open(os.path.join(bench, "cases.tsv"), "w") as f:
        for c in cases:
            f.write("\t".join(c) + "\n")
    with open(os.path.join(bench, "plan.json"), "w") as f:
        json.dump({"ids": ids, "views": summary}, f, indent=1)
    for name, s in summary.items():
        print("%s: %s, %d bytes; parts: %s; client calls: %d; njs: %s bytes, %s ETag"
              % (name, s["route"], s["bytes"],
                 ", ".join("%s (stage %d)" % (p, st) for p, st, _ in s["parts"]),
                 s["client_calls"], "same" if s["same_bytes"] else "different",
                 "same" if s["same_etag"] else "different"))


# ---- report ---------------------------------------------------------------------

def cmd_report(raw, machine, plan_json):
    rows = []
    with open(raw) as f:
        head = f.readline().rstrip("\n").split("\t")
        for line in f:
            rows.append(dict(zip(head, line.rstrip("\n").split("\t"))))
    with open(plan_json) as f:
        plan = json.load(f)
    hz = float(rows[0]["hz"]) if rows else 100.0

    # median over rounds of each (cache, view, case, conns)
    groups = {}
    for r in rows:
        k = (r["cache"], r["view"], r["case"], int(r["conns"]))
        groups.setdefault(k, []).append(r)

    def med(k, col):
        return statistics.median(float(r[col]) for r in groups[k])

    def cpu(k, cols):
        # µs per iteration, over the rounds' sums
        it = sum(float(r["iterations"]) for r in groups[k])
        t = sum(sum(float(r[c]) for c in cols) for r in groups[k])
        return t / hz * 1e6 / it

    with open(machine) as f:
        print(f.read().rstrip("\n"))
    print()

    caches = [c for c in ("off", "on") if any(k[0] == c for k in groups)]
    conns = sorted({k[3] for k in groups})
    views = []
    for k in groups:
        if k[1] not in views:
            views.append(k[1])
    summary = []

    for cache in caches:
        print("## Part cache %s\n" % ("off (every part reaches its worker)" if cache == "off"
                                      else "on (as configured: anonymous parts from proxy_cache)"))
        for v in views:
            cases = []
            for k in groups:
                if k[0] == cache and k[1] == v and k[2] not in cases:
                    cases.append(k[2])
            if not cases:
                continue
            print("### %s view: `%s`\n" % (v, plan["views"][v]["route"]))
            hdr = "| case |"
            sep = "|---|"
            for c in conns:
                hdr += " p50 µs (c=%d) | p99 µs (c=%d) |" % (c, c)
                sep += "---:|---:|"
            hdr += " views/s (c=%d) | edge µs/view | user / sys | workers µs/view |" % conns[-1]
            sep += "---:|---:|---:|---:|"
            print(hdr)
            print(sep)
            for case in cases:
                line = "| %s |" % label(case)
                for c in conns:
                    k = (cache, v, case, c)
                    line += " %.0f | %.0f |" % (med(k, "p50"), med(k, "p99")) if k in groups else " – | – |"
                k = (cache, v, case, conns[-1])
                line += " %.0f | %.1f | %.1f / %.1f | %.1f |" % (
                    med(k, "iterations") / med(k, "secs"),
                    cpu(k, ["nginx_utime", "nginx_stime"]),
                    cpu(k, ["nginx_utime"]), cpu(k, ["nginx_stime"]),
                    cpu(k, ["workers_ticks"]))
                print(line)
            print()

            parts = [c for c in cases if c.startswith("part:")]
            for c in conns:
                if (cache, v, "view", c) not in groups:
                    continue
                for q in ("p50", "p99"):
                    view = med((cache, v, "view", c), q)
                    slow = max(parts, key=lambda p: med((cache, v, p, c), q))
                    slowest = med((cache, v, slow, c), q)
                    stages = {}
                    for p in parts:
                        s = int(p.rsplit(":", 1)[1])
                        stages[s] = max(stages.get(s, 0), med((cache, v, p, c), q))
                    crit = sum(stages.values())
                    summary.append({
                        "cache": cache, "view": v, "conns": c, "q": q,
                        "view_us": view, "slowest": slow.split(":")[1],
                        "slowest_us": slowest, "ratio": view / slowest,
                        "crit_us": crit, "crit_ratio": view / crit,
                        "stages": len(stages),
                        "seq": med((cache, v, "client_seq", c), q) / view,
                        "par": med((cache, v, "client_par", c), q) / view,
                        "njs": med((cache, v, "njs", c), q) / view,
                    })
            k, n = (cache, v, "view", conns[-1]), (cache, v, "njs", conns[-1])
            if k in groups and n in groups:
                summary.append({
                    "cache": cache, "view": v, "cpu": True,
                    "module": cpu(k, ["nginx_utime", "nginx_stime"]),
                    "njs": cpu(n, ["nginx_utime", "nginx_stime"]),
                    "module_user": cpu(k, ["nginx_utime"]),
                    "njs_user": cpu(n, ["nginx_utime"]),
                    "parts": sum(cpu((cache, v, p, conns[-1]),
                                     ["nginx_utime", "nginx_stime"]) for p in parts),
                })

    print("## Aims (issue 9)\n")
    print("View latency ÷ its slowest part's (each part alone, same location, "
          "same concurrency; aim ≤ 1.2). The post view has two stages (its "
          "artists part needs the post's artist_ids), so its floor is the "
          "critical path: the slowest stage-1 part + the stage-2 part; "
          "\"÷ critical path\" is that ratio.\n")
    print("| cache | view | clients | quantile | view µs | slowest part | part µs | view ÷ slowest part | view ÷ critical path | client seq ÷ view | client par ÷ view | njs ÷ view |")
    print("|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for s in summary:
        if s.get("cpu"):
            continue
        print("| %s | %s | %d | %s | %.0f | %s | %.0f | **%.2f** %s | %s | %.2f | %.2f | %.2f |" % (
            s["cache"], s["view"], s["conns"], s["q"], s["view_us"], s["slowest"],
            s["slowest_us"], s["ratio"], "met" if s["ratio"] <= 1.2 else "missed",
            "%.2f" % s["crit_ratio"] if s["stages"] > 1 else "–",
            s["seq"], s["par"], s["njs"]))
    print()
    print("Edge CPU per view (the bench's one nginx worker, utime+stime over "
          "the c=%d run ÷ views answered; aim: module ≤ 0.5 × njs):\n" % conns[-1])
    print("| cache | view | module µs | njs µs | module ÷ njs | user only: module / njs µs | user ratio | its parts alone, summed µs | above the parts: module / njs µs | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in summary:
        if not s.get("cpu"):
            continue
        r = s["module"] / s["njs"]
        am, an = s["module"] - s["parts"], s["njs"] - s["parts"]
        print("| %s | %s | %.1f | %.1f | **%.2f** %s | %.1f / %.1f | %.2f | %.1f | %.1f / %.1f | %s |" % (
            s["cache"], s["view"], s["module"], s["njs"], r,
            "met" if r <= 0.5 else "missed", s["module_user"], s["njs_user"],
            s["module_user"] / s["njs_user"], s["parts"], am, an,
            "%.2f" % (am / an) if an > 0 else "–"))
    print()
    print("\"Its parts alone, summed\": the edge CPU of requesting each part by "
          "itself (a client request each, with its own connection handling, "
          "parsing and access-log line, which a subrequest does not have), so "
          "\"above the parts\" is a rough lower bound on what building the view "
          "costs the edge.")


def label(case):
    if case == "view":
        return "**view (aggregate module)**"
    if case == "njs":
        return "view in njs (r.subrequest)"
    if case == "client_seq":
        return "client, calls in sequence"
    if case == "client_par":
        return "client, calls in parallel"
    _, name, stage = case.split(":")
    return "part `%s` alone (stage %s)" % (name, stage)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "conf":
        cmd_conf(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "plan":
        cmd_plan(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        cmd_report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
