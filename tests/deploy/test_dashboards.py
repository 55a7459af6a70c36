"""The Grafana dashboards (infrastructure/monitoring/dashboards/, issue
13): every metric a query names is one the edge module or the workers
really export, read from the code that exports them (the edge's family
table in ngx_modules/metrics/encore_metrics.c and its own # TYPE lines;
the workers' metrics.c and every enc_metrics_counter_add/gauge_set,
gauge_set_labels, observe and histogram_observe in workers/lib), and every
label a query selects or groups by is one that
metric carries (or the scrape adds: job, instance, worker).

Run by auto/test's "manifests" suite.
"""
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "infrastructure" / "monitoring" / "dashboards"
SCRAPE = {"job", "instance"}


def edge_metrics():
    src = (ROOT / "ngx_modules" / "metrics" / "encore_metrics.c").read_text()
    table = src[src.index("encore_metrics_families[] = {"):]
    table = table[:table.index("};")]
    out = {}
    for m in re.finditer(r'\{\s*"(encore_\w+)",.*?,\s*([01]),\s*\d+,\s*\{([^}]*)\}\s*\}',
                         table, re.S):
        labels = set(re.findall(r'"(\w+)"', m.group(3)))
        out[m.group(1)] = (m.group(2) == "1", labels)
    for name in re.findall(r"# TYPE (encore_\w+) ", src):
        out.setdefault(name, (False, set()))
    return out


def worker_metrics():
    src = (ROOT / "workers" / "lib" / "metrics.c").read_text()
    out = {"encore_worker_info": (False, {"worker"}),
           "encore_http_requests_total": (False, {"route", "status"}),
           "encore_http_request_duration_seconds": (True, {"route"})}
    for name in ("encore_worker_info", "encore_http_requests_total",
                 "encore_http_request_duration_seconds"):
        assert "# TYPE %s " % name in src, name
    for f in (ROOT / "workers" / "lib").glob("*.c"):
        text = f.read_text()
        for name in re.findall(r'enc_metrics_(?:counter_add|gauge_set)\(\s*"(encore_\w+)"',
                               text):
            out[name] = (False, set())
        # labels: the literal names of the name, value pairs
        for name, pairs in re.findall(r'enc_metrics_gauge_set_labels\(\s*"(encore_\w+)"'
                                      r'.*?\(const char \*const\s*\[\]\)\s*\{([^}]*)\}',
                                      text, re.S):
            out[name] = (False, set(re.findall(r'"(\w+)"\s*,\s*[A-Za-z_]', pairs)))
        for name in re.findall(r'enc_metrics_(?:histogram_)?observe\(\s*"(encore_\w+)"', text):
            out[name] = (True, set())
    return out


def queries(dashboard):
    for p in dashboard["panels"]:
        for t in p.get("targets", []):
            yield p["title"], t["expr"]
    for v in dashboard["templating"]["list"]:
        if v.get("type") == "query":
            yield v["name"], v["query"]["query"]


def check(expr, exported, extra):
    """Problems of one PromQL expression against the exported families."""
    problems = []
    names = set(re.findall(r"\b(encore_[a-z0-9_]+|up)\b", expr))
    assert names, "no metric in %r" % expr
    labels_ok = set(SCRAPE) | extra
    for n in names:
        if n == "up":
            continue
        base, suffix = n, None
        for s in ("_bucket", "_sum", "_count"):
            if n.endswith(s) and n[:-len(s)] in exported and exported[n[:-len(s)]][0]:
                base, suffix = n[:-len(s)], s
        if base not in exported:
            problems.append("%s is not exported" % n)
            continue
        hist, labels = exported[base]
        if hist and suffix is None:
            problems.append("%s is a histogram: name its _bucket, _sum or _count" % n)
        labels_ok |= labels | ({"le"} if suffix == "_bucket" else set())
    used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
    for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        used |= {g.strip() for g in group.split(",") if g.strip()}
    used |= set(re.findall(r"label_values\([^,]+,\s*(\w+)\)", expr))
    for label in sorted(used - labels_ok):
        problems.append("no metric of %r has the label %s" % (expr[:60], label))
    return problems


@pytest.mark.parametrize("name,exported,extra", [
    ("encore-edge.json", edge_metrics, set()),
    ("encore-workers.json", worker_metrics, {"worker"}),
])
def test_queries_name_exported_metrics(name, exported, extra):
    d = json.loads((DASHBOARDS / name).read_text())
    inventory = exported()
    problems = []
    for title, expr in queries(d):
        problems += ["%s: %s" % (title, p) for p in check(expr, inventory, extra)]
    assert not problems, "\n".join(problems)


def test_the_check_can_fail():
    inv = worker_metrics()
    assert check('rate(encore_outbox_lag_seconds[5m])', inv, {"worker"})
    assert check('sum by (topic) (rate(encore_outbox_published_total[5m]))', inv, {"worker"})
    assert check('rate(encore_http_request_duration_seconds[5m])', inv, {"worker"})
    assert not check('sum by (le) (rate(encore_http_request_duration_seconds_bucket[5m]))',
                     inv, {"worker"})
    assert not check('max by (topic, partition) (encore_consumer_lag)', inv, {"worker"})
    assert check('max by (group) (encore_consumer_lag)', inv, {"worker"})
    assert check('rate(encore_consumer_batch_size[5m])', inv, {"worker"})


def test_dashboards_cover_the_issue():
    edge = (DASHBOARDS / "encore-edge.json").read_text()
    for metric in ("encore_http_requests_total", "encore_http_request_duration_seconds_bucket",
                   "encore_jwt_verifications_total", "encore_jwt_cache_requests_total",
                   "encore_upstream_failures_total"):
        assert metric in edge
    workers = (DASHBOARDS / "encore-workers.json").read_text()
    for metric in ("encore_http_requests_total", "encore_outbox_backlog",
                   "encore_consumer_applied_total", "encore_consumer_lag",
                   "encore_consumer_batch_size_bucket"):
        assert metric in workers
    for f in DASHBOARDS.glob("*.json"):
        d = json.loads(f.read_text())
        assert d["uid"] and len({p["id"] for p in d["panels"]}) == len(d["panels"])
