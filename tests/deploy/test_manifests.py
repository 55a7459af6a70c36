"""infrastructure/k8s/ (issue 13), offline: kustomize builds the base and
both overlays; every core resource validates against the Kubernetes
schemas kubernetes-validate ships (strictly: an unknown field is an
error); the operators' custom resources against their CRDs' schemas
(Strimzi's, vendored in tests/deploy/crds/ as no registry serves them;
CloudNativePG's from its Go module, fetched by auto/deps into
$ENCORE_DEPS_DIR/crds/), unknown fields refused as kubectl's strict
field validation does; generated/ is what render writes; and what the
issue asks of the resources themselves (probes, TCP, who may talk to
whom, non-root read-only pods, one of everything per worker).

Run by auto/test's "manifests" suite.
"""
import copy
import json
import os
import pathlib
import re
import subprocess

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "infrastructure" / "k8s"
DEPS = pathlib.Path(os.environ.get("ENCORE_DEPS_DIR", ROOT / "var" / "deps"))
KUSTOMIZE = os.environ.get("ENCORE_KUSTOMIZE", str(DEPS / "bin" / "kustomize"))
# the oldest Kubernetes release still maintained when this was written
K8S_VERSION = "1.32.0"
OVERLAYS = ["local", "production"]
CRD_DIRS = [pathlib.Path(__file__).parent / "crds", DEPS / "crds"]

# the agents (.no_database = 1: the edge agent) are sidecars of the edge
AGENTS = sorted(p.parent.name for p in ROOT.glob("workers/*/main.c")
                if re.search(r"\.no_database\s*=\s*1", p.read_text()))
WORKERS = sorted(p.parent.name for p in ROOT.glob("workers/*/main.c")
                 if p.parent.name not in ["lib", "probe"] + AGENTS)


def build(path):
    r = subprocess.run([KUSTOMIZE, "build", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request):
    return request.param, build(K8S / "overlays" / request.param)


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def crd_schemas():
    out = {}
    for d in CRD_DIRS:
        for f in sorted(d.rglob("*.yaml")):
            for doc in yaml.safe_load_all(f.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
                for v in doc["spec"]["versions"]:
                    if v.get("served"):
                        out["%s/%s" % (group, v["name"]), kind] = v["schema"]["openAPIV3Schema"]
    return out


def strict(schema):
    """A CRD's structural schema as the API server applies it with
    fieldValidation=Strict: a field it does not declare is an error."""
    s = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields") \
                and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties"):
            for sub in node.get(key, {}).values():
                walk(sub)
        for key in ("items", "additionalProperties", "not"):
            walk(node.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key, []):
                walk(sub)
    walk(s)
    # apiVersion, kind and metadata are the API server's to check
    s.setdefault("properties", {})
    for key in ("apiVersion", "kind", "metadata"):
        s["properties"][key] = {}
    return s


def test_generated_is_in_step():
    r = subprocess.run([str(K8S / "render"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_base_builds():
    kinds = {d["kind"] for d in build(K8S / "base")}
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
            "NetworkPolicy", "Job", "ConfigMap", "Kafka", "KafkaNodePool",
            "KafkaTopic", "KafkaUser", "Cluster"} <= kinds


def test_core_resources_validate(overlay):
    name, docs = overlay
    failures = []
    for d in docs:
        if "." in d["apiVersion"].split("/")[0] and not d["apiVersion"].startswith(
                tuple(g + "/" for g in ("apps", "batch", "policy", "autoscaling",
                                        "networking.k8s.io"))):
            continue                              # a custom resource
        try:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            failures.append("%s %s: %s" % (d["kind"], d["metadata"]["name"], e.message))
    assert not failures, "\n".join(failures)


def test_custom_resources_match_their_crds(overlay):
    name, docs = overlay
    schemas = crd_schemas()
    custom = [d for d in docs if "." in d["apiVersion"].split("/")[0]
              and not d["apiVersion"].startswith(("apps/", "batch/", "policy/",
                                                  "autoscaling/", "networking.k8s.io/"))]
    assert {d["kind"] for d in custom} == {"Kafka", "KafkaNodePool", "KafkaTopic",
                                           "KafkaUser", "Cluster"}
    failures = []
    for d in custom:
        key = (d["apiVersion"], d["kind"])
        assert key in schemas, "no CRD schema for %s %s (auto/deps k8s)" % key
        v = jsonschema.Draft7Validator(strict(schemas[key]))
        for e in v.iter_errors(json.loads(json.dumps(d))):
            failures.append("%s %s: %s at %s" % (d["kind"], d["metadata"]["name"],
                                                 e.message, "/".join(map(str, e.absolute_path))))
    assert not failures, "\n".join(failures)


def pod(d):
    return d["spec"]["template"]["spec"]


def test_every_worker_has_its_resources(overlay):
    name, docs = overlay
    deps, svcs = by_kind(docs, "Deployment"), by_kind(docs, "Service")
    pdbs, hpas = by_kind(docs, "PodDisruptionBudget"), by_kind(docs, "HorizontalPodAutoscaler")
    jobs, users = by_kind(docs, "Job"), by_kind(docs, "KafkaUser")
    cluster = next(iter(by_kind(docs, "Cluster").values()))
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    confs = next(d for d in docs if d["kind"] == "ConfigMap"
                 and d["metadata"]["name"].startswith("encore-workers-conf"))["data"]
    for w in WORKERS:
        n = "encore-" + w
        c = pod(deps[n])["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        assert "http.listen = tcp:0.0.0.0:8080" in confs[w + ".conf"]
        assert svcs[n]["spec"]["ports"][0]["port"] == 8080
        assert pdbs[n]["spec"]["selector"]["matchLabels"] == deps[n]["spec"]["selector"]["matchLabels"]
        assert hpas[n]["spec"]["scaleTargetRef"]["name"] == deps[n]["metadata"]["name"]
        job = pod(jobs[n + "-migrate"])["containers"][0]
        assert job["args"][-1] == "migrate" and job["image"] == c["image"]
        assert users[n]["spec"]["authentication"]["type"] == "scram-sha-512"
        assert roles["encore_" + w]["login"] is True
        assert roles["encore_" + w]["passwordSecret"]["name"] == n + "-db"
        assert "CREATE SCHEMA IF NOT EXISTS %s AUTHORIZATION encore_%s" % (w, w) \
            in cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    # the edge reaches each worker's Service on its port
    edge = next(d for d in docs if d["kind"] == "ConfigMap"
                and d["metadata"]["name"].startswith("encore-edge-conf"))["data"]
    for w in WORKERS:
        assert "server     encore-%s:8080" % w in edge["upstreams.conf"]


def test_workers_find_their_files(overlay):
    """The configuration the worker is told to read is in its mounted
    ConfigMap, every file its configuration names is under one of its
    mounts, and nothing is mounted under the image's /etc/encore/secrets
    (the package's, root's alone: the worker could not traverse it)."""
    name, docs = overlay
    confs = next(d for d in docs if d["kind"] == "ConfigMap"
                 and d["metadata"]["name"].startswith("encore-workers-conf"))
    for d in docs:
        if d["kind"] not in ("Deployment", "Job") or \
                d["metadata"]["name"] == "encore-edge":
            continue
        spec = pod(d)
        c = spec["containers"][0]
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        path = pathlib.PurePosixPath(c["args"][c["args"].index("-c") + 1])
        assert volumes[mounts[str(path.parent)]]["configMap"]["name"] == confs["metadata"]["name"]
        text = confs["data"][path.name]
        for key, value in re.findall(r"^([a-z_.]+(?:_file|_dir))\s*=\s*(/\S+)$", text, re.M):
            # the image's; and `migrate` exits before auth reads its keys
            if key == "migrations.dir" or (d["kind"] == "Job" and key == "auth.keys_dir"):
                continue
            assert any(value.startswith(m + "/") or value == m for m in mounts), (d["metadata"]["name"], key, value)
        for m in mounts:
            assert not m.startswith("/etc/encore/secrets"), m


def test_entity_topics_are_compacted(overlay):
    name, docs = overlay
    topics = {d["spec"]["topicName"]: d for d in by_kind(docs, "KafkaTopic").values()}
    for f in (ROOT / "schemas" / "events").glob("encore.*.json"):
        t = f.name[:-len(".json")]
        if t.split(".")[1] in WORKERS and t != "encore.auth.revocations":
            assert topics[t]["spec"]["config"]["cleanup.policy"] == "compact"


def test_pods_are_non_root_and_read_only(overlay):
    name, docs = overlay
    for d in docs:
        if d["kind"] not in ("Deployment", "Job"):
            continue
        spec = pod(d)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"] + spec.get("initContainers", []):
            assert c["image"].endswith(("encore-edge:dev", "encore-workers:dev", ":0.1.0")), c["image"]
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]


def test_network_policies(overlay):
    name, docs = overlay
    pols = by_kind(docs, "NetworkPolicy")
    deny = pols["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and "ingress" not in deny
    workers = pols["encore-workers"]["spec"]
    assert workers["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "worker"}
    assert [p["podSelector"]["matchLabels"] for r in workers["ingress"] for p in r["from"]] \
        == [{"app.kubernetes.io/component": "edge"}]
    pg = pols["encore-pg"]["spec"]
    peers = [p.get("podSelector", {}).get("matchLabels") for r in pg["ingress"]
             for p in r["from"] if r["ports"][0]["port"] == 5432]
    assert {"app.kubernetes.io/component": "edge"} not in peers
    # every labelled pod is selected by the policy of its component
    for d in docs:
        if d["kind"] == "Deployment":
            comp = d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
            assert comp in ("edge", "worker")
    kafka = next(iter(by_kind(docs, "Kafka").values()))
    # the workers, and the edge's pods for their agent (revocations)
    for listener in kafka["spec"]["kafka"]["listeners"]:
        assert listener["networkPolicyPeers"] == [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "worker"}}},
            {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "edge"}}}]


def test_edge_configuration_loads(tmp_path):
    """The edge's generated nginx.conf, with the cluster's names and
    paths pointed here, passes `nginx -t` with the module loaded."""
    so = ROOT / "build" / "modules" / "ngx_http_encore_module.so"
    assert so.exists(), "build the module first (make)"
    from cryptography.hazmat.primitives.asymmetric import ec
    import base64

    def b64(n):
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
    pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "kid": "t",
                                          "use": "sig", "alg": "ES256",
                                          "x": b64(pub.x), "y": b64(pub.y)}]}))
    # https as components/tls mounts it: tls.conf in its own directory,
    # the Secret's tls.crt and tls.key beside it (made here)
    tls = tmp_path / "encore-tls"
    tls.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(tmp_path / "tls.key"),
                    "-out", str(tmp_path / "tls.crt")], check=True, capture_output=True)
    for f in (K8S / "base" / "generated" / "edge-conf").glob("*.conf"):
        text = re.sub(r"(?<=[ ])/tmp/", str(tmp_path) + "/", f.read_text())
        text = re.sub(r"server     encore-[a-z]+:8080", "server     127.0.0.1:8080", text)
        text = text.replace("/etc/encore/jwks/jwks.json", str(jwks))
        text = text.replace("include /etc/nginx/modules-enabled/50-mod-http-encore.conf;",
                            "load_module %s;" % so)
        text = text.replace("/etc/nginx/encore-tls/", str(tls) + "/")
        text = text.replace("/etc/encore/tls/", str(tmp_path) + "/")
        (tmp_path / f.name).write_text(text)
    for enabled in (False, True):
        if enabled:
            (tls / "tls.conf").write_text((tmp_path / "tls.conf").read_text())
        r = subprocess.run(["/usr/sbin/nginx", "-t", "-q", "-p", str(tmp_path) + "/",
                            "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
                           capture_output=True, text=True)
        assert r.returncode == 0, (enabled, r.stderr)
    # a certificate that names no OCSP responder: stapling is skipped
    assert "ssl_stapling" in r.stderr, r.stderr


def test_production_serves_https_at_the_edge(overlay):
    name, docs = overlay
    edge = [d for d in docs if d["kind"] == "Deployment"
            and d["metadata"]["name"] == "encore-edge"][0]
    pod = edge["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    svc = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "encore-edge"][0]
    policy = [d for d in docs if d["kind"] == "NetworkPolicy"
              and d["metadata"]["name"] == "encore-edge"][0]
    policy_ports = {p["port"] for p in policy["spec"]["ingress"][0]["ports"]}
    if name != "production":
        assert "https" not in ports and 8443 not in policy_ports
        return
    assert ports["https"] == 8443 and 8443 in policy_ports
    assert {"port": 443, "name": "https", "targetPort": "https"} in svc["spec"]["ports"]
    assert volumes[mounts["/etc/encore/tls"]]["secret"]["secretName"] == "encore-edge-tls"
    conf = volumes[mounts["/etc/nginx/encore-tls"]]["configMap"]
    assert conf["items"] == [{"key": "tls.conf", "path": "tls.conf"}]
    assert conf["name"].startswith("encore-edge-conf")     # kustomize's hashed name
    cm = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == conf["name"]][0]
    assert "listen       8443 ssl http2;" in cm["data"]["tls.conf"]
    assert "include  /etc/nginx/encore-tls/*.conf;" in cm["data"]["nginx.conf"]


def test_edge_agent_is_a_sidecar_of_the_edge(overlay):
    """Every edge pod has its agent: it reads the revocations as its own
    KafkaUser (reads only, no group) and posts to nginx on loopback."""
    name, docs = overlay
    assert AGENTS == ["edge-agent"]
    edge = by_kind(docs, "Deployment")["encore-edge"]
    c = {c["name"]: c for c in pod(edge)["containers"]}["edge-agent"]
    assert c["command"] == ["/usr/sbin/encore-edge-agent"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "encore-edge-agent" not in by_kind(docs, "Deployment")
    confs = next(d for d in docs if d["kind"] == "ConfigMap"
                 and d["metadata"]["name"].startswith("encore-workers-conf"))["data"]
    conf = confs["edge-agent.conf"]
    assert "agent.edge_url = http://127.0.0.1:8080/internal/revocations" in conf
    assert "http.listen = tcp:0.0.0.0:8081" in conf
    assert "kafka.sasl_username = encore-edge-agent" in conf
    user = by_kind(docs, "KafkaUser")["encore-edge-agent"]
    acls = user["spec"]["authorization"]["acls"]
    assert [a["resource"] for a in acls] == [
        {"type": "topic", "name": "encore.auth.revocations", "patternType": "literal"}]
    assert acls[0]["operations"] == ["Read", "Describe"]
    topics = {d["spec"]["topicName"]: d for d in by_kind(docs, "KafkaTopic").values()}
    cfg = topics["encore.auth.revocations"]["spec"]["config"]
    assert cfg["cleanup.policy"] == "delete" and cfg["retention.ms"] == 86400000
