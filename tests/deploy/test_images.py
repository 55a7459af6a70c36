"""infrastructure/docker/Dockerfile (issue 13), statically: no Docker
engine here.  hadolint (from PyPI, the binary in its wheel) finds
nothing at any level but the ignores .hadolint.yaml explains; both images
are Debian 12, run as the non-root user the Kubernetes manifests expect,
and install the very packages `make deb` builds (so the same files),
from a build stage that copies what auto/deb copies; the manifests run
what the images hold.

Run by auto/test's "manifests" suite.
"""
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKER = ROOT / "infrastructure" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
K8S = ROOT / "infrastructure" / "k8s"


def stages():
    """name -> list of (instruction, arguments), continuation lines joined."""
    out, current = {}, None
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(\S+)\s+AS\s+(\S+)", args, re.I)
            current = m.group(2)
            out[current] = [("FROM", m.group(1))]
        else:
            out[current].append((instr, " ".join(args.split())))
    return out


def get(stage, instr):
    return [a for i, a in stage if i == instr]


def packages():
    control = (ROOT / "debian" / "control").read_text()
    return re.findall(r"^Package: (\S+)$", control, re.M)


def test_hadolint_clean():
    hadolint = pathlib.Path(sys.executable).parent / "hadolint"
    r = subprocess.run([str(hadolint), "--config", str(DOCKER / ".hadolint.yaml"),
                        str(DOCKERFILE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_debian_12_multi_stage():
    s = stages()
    assert list(s) == ["build", "edge", "workers"]
    for name, stage in s.items():
        assert re.fullmatch(r"debian:12(-slim)?", get(stage, "FROM")[0]), name


def test_images_install_the_packages():
    """Each package of debian/control in one image, installed from
    the .deb the build stage made: the same files as on a Debian host."""
    s = stages()
    want = {"edge": ["libnginx-mod-http-encore", "encore-edge"],
            "workers": ["encore-workers"]}
    assert sorted(sum(want.values(), [])) == sorted(packages())
    for name, pkgs in want.items():
        copies = [a for a in get(s[name], "COPY") if a.startswith("--from=build")]
        assert copies == ["--from=build %s /tmp/" % " ".join("/debs/%s_*.deb" % p for p in pkgs)], name
        runs = " ".join(get(s[name], "RUN"))
        assert "apt-get install -y --no-install-recommends" in runs
        for pkg in pkgs:
            assert "/tmp/%s_*.deb" % pkg in runs
        assert "rm -rf /var/lib/apt/lists/*" in runs
    build = " ".join(get(s["build"], "RUN"))
    assert "apt-get build-dep" in build and "dpkg-buildpackage -b" in build


def test_build_stage_copies_what_auto_deb_copies():
    deb = (ROOT / "auto" / "deb").read_text()
    listed = set(re.search(r"cp -a (.*) \"\$src/\"", deb).group(1).split())
    copied = set()
    for a in get(stages()["build"], "COPY"):
        copied.update(a.split()[:-1])
    copied.discard("debian/control")
    assert copied == listed


def test_non_root_as_the_manifests_expect():
    s = stages()
    docs = []
    for f in [K8S / "base" / "edge.yaml"] + sorted((K8S / "base" / "generated" / "workers").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    run_as = {d["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
              for d in docs if d["kind"] in ("Deployment", "Job")}
    assert run_as == {10001}
    for name in ("edge", "workers"):
        assert get(s[name], "USER") == ["10001:10001"], name
        runs = " ".join(get(s[name], "RUN"))
        assert "--uid 10001" in runs and "--gid 10001" in runs


def test_manifests_run_what_the_images_hold():
    s = stages()
    edge = next(d for d in yaml.safe_load_all((K8S / "base" / "edge.yaml").read_text())
                if d and d["kind"] == "Deployment")
    c = edge["spec"]["template"]["spec"]["containers"][0]
    assert json.loads(get(s["edge"], "ENTRYPOINT")[0]) == c["command"]
    assert json.loads(get(s["edge"], "CMD")[0]) == c["args"]
    assert "COPY infrastructure/k8s/base/generated/edge-conf /etc/nginx/encore" \
        in ["COPY " + a for a in get(s["edge"], "COPY")]
    # the workers' environment is the unit's
    unit = (ROOT / "debian" / "encore-workers.encore-worker@.service").read_text()
    env = re.findall(r"^Environment=(\S+)$", unit, re.M)
    assert get(s["workers"], "ENV") == env
    # each worker Deployment runs a binary the package installs
    install = (ROOT / "debian" / "rules").read_text()
    assert "debian/tmp/usr/sbin/encore-$$w" in install
    for f in (K8S / "base" / "generated" / "workers").glob("*.yaml"):
        for d in yaml.safe_load_all(f.read_text()):
            if d and d["kind"] in ("Deployment", "Job"):
                cmd = d["spec"]["template"]["spec"]["containers"][0]["command"]
                assert cmd == ["/usr/sbin/encore-%s" % f.stem]
