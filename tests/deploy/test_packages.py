"""The Debian packages on this machine (issue 13): `make deb`'s
libnginx-mod-http-encore, encore-workers and encore-edge are installed
with dpkg, the system nginx loads the module through the package's
snippet and serves encore-edge's configuration, the workers
are started the way encore-worker@.service says (systemd is not PID 1
here: its User, environment, credentials and ExecStart are read from the
installed unit and carried out by hand, its NOTIFY_SOCKET included, and
the listening socket encore-worker@.socket describes is made and passed
as systemd passes it, LISTEN_FDS), and a request is served end to end,
JWT included.  Then the packages are purged.

Run by auto/test's "deploy" suite, as root (dpkg), with the .deb files in
$ENCORE_DEB_DIR and PostgreSQL and Kafka from `auto/stack start-infra`
under $ENCORE_RUN_DIR.
"""
import grp
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEB_DIR = pathlib.Path(os.environ.get("ENCORE_DEB_DIR", ROOT / "build" / "deb"))
RUN_DIR = pathlib.Path(os.environ["ENCORE_RUN_DIR"])
EDGE_PORT = os.environ["ENCORE_EDGE_PORT"]
EDGE = "http://127.0.0.1:%s" % EDGE_PORT
HTTPS_PORT = os.environ["ENCORE_HTTPS_PORT"]
UNIT = pathlib.Path("/lib/systemd/system/encore-worker@.service")
TOPICS_UNIT = pathlib.Path("/lib/systemd/system/encore-topics.service")
SOCKET_UNIT = pathlib.Path("/lib/systemd/system/encore-worker@.socket")
PACKAGES = ["libnginx-mod-http-encore", "encore-workers", "encore-edge"]
# every packaged worker (debian/rules: workers/*/main.c but the probe):
# encore-edge's /readyz asks them all
# the agents (.no_database = 1) have their own unit and no schema
AGENTS = sorted(p.parent.name for p in (ROOT / "workers").glob("*/main.c")
                if re.search(r"\.no_database\s*=\s*1", p.read_text()))
WORKERS = sorted(p.parent.name for p in (ROOT / "workers").glob("*/main.c")
                 if p.parent.name not in ["probe"] + AGENTS)


def run(*cmd, **kw):
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(cmd), **kw)


def unit_settings(path, instance, want="Service"):
    """The [Service] (or want's) settings of a unit file, %i resolved, as
    name -> list of values (a key may repeat)."""
    out, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section != want:
            continue
        key, _, value = line.partition("=")
        value = value.replace("%i", instance)
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def environment_file(path):
    env = {}
    for line in pathlib.Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            env[k.strip()] = v.strip().strip('"')
    return env


class Notify:
    """The datagram socket systemd would pass as NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)        # the worker runs as the unit's User
        self.sock.settimeout(0.2)

    def wait_for(self, word, proc, log):
        """The message with word; fails when proc exits first."""
        while True:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                assert proc.poll() is None, \
                    "exited (%s) before %s:\n%s" % (proc.returncode, word,
                                                    pathlib.Path(log).read_text()[-3000:])
                continue
            if word in msg.split("\n"):
                return msg


def unit_socket(instance):
    """The listening socket encore-worker@<instance>.socket describes,
    made as systemd makes it (owner, group, mode, backlog)."""
    s = unit_settings(SOCKET_UNIT, instance, "Socket")
    path = s["ListenStream"][0]
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chown(path, pwd.getpwnam(s["SocketUser"][0]).pw_uid,
             grp.getgrnam(s["SocketGroup"][0]).gr_gid)
    os.chmod(path, int(s["SocketMode"][0], 8))
    sock.listen(int(s.get("Backlog", ["128"])[0]))
    return sock, path


class UnitProcess:
    """One encore-worker@<instance> started as the unit says."""

    def __init__(self, instance, tmp):
        s = unit_settings(UNIT, instance)
        assert s["Type"] == ["notify"]
        user = s["User"][0]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        for f in s.get("EnvironmentFile", []):
            optional = f.startswith("-")
            f = f.lstrip("-")
            if optional and not os.path.exists(f):
                continue
            env.update(environment_file(f))
        for e in s.get("Environment", []):
            k, _, v = e.partition("=")
            env[k] = v
        # LoadCredential=: systemd copies each file, as root, into a
        # directory only the service's user can read
        creds = tmp / ("creds-" + instance)
        creds.mkdir(mode=0o700)
        pw = pwd.getpwnam(user)
        for c in s.get("LoadCredential", []):
            name, _, src = c.partition(":")
            shutil.copyfile(src, creds / name)
            os.chmod(creds / name, 0o400)
            os.chown(creds / name, pw.pw_uid, pw.pw_gid)
        os.chown(creds, pw.pw_uid, pw.pw_gid)
        os.chmod(creds, 0o500)
        env["CREDENTIALS_DIRECTORY"] = str(creds)
        self.notify = Notify(str(tmp / ("notify-" + instance)))
        env["NOTIFY_SOCKET"] = self.notify.path
        umask = int(s.get("UMask", ["0022"])[0], 8)
        argv = s["ExecStart"][0].split()
        # the service requires its socket unit: systemd passes the socket
        # as descriptor 3, LISTEN_PID naming the service's process (the
        # shell's pid, which exec keeps)
        requires = unit_settings(UNIT, instance, "Unit").get("Requires", [])
        assert "encore-worker@%s.socket" % instance in requires, requires
        self.sock, self.sock_path = unit_socket(instance)
        env["LISTEN_FDS"] = "1"
        env["LISTEN_FDNAMES"] = "encore-worker@%s.socket" % instance
        fd = self.sock.fileno()

        def child():
            os.umask(umask)
            os.dup2(fd, 3)
        self.log_path = tmp / (instance + ".log")
        self.log = open(self.log_path, "w")
        # User=, Group= and the user's supplementary groups (www-data, for
        # the socket's group), NoNewPrivileges=, no capabilities
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", 'LISTEN_PID=$$ && export LISTEN_PID && exec "$@"', "sh",
             "setpriv", "--reuid=" + user, "--regid=" + s["Group"][0],
             "--init-groups", "--no-new-privs", "--inh-caps=-all",
             "--bounding-set=-all", "--"] + argv,
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd="/",
            pass_fds=(3,), preexec_fn=child)
        self.instance = instance

    def ready(self):
        return self.notify.wait_for("READY=1", self.proc, self.log_path)

    def stop(self):
        if self.proc.poll() is not None:
            return "", self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        stopping = self.notify.wait_for("STOPPING=1", self.proc, self.log_path)
        rc = self.proc.wait(timeout=60)
        self.log.close()
        self.notify.sock.close()
        # a passed socket is systemd's: the worker leaves it in place
        # (RemoveOnStop= removes it with the socket unit)
        assert os.path.exists(self.sock_path)
        self.sock.close()
        os.unlink(self.sock_path)
        return stopping, rc


@pytest.fixture(scope="module")
def installed():
    debs = [next(DEB_DIR.glob("%s_*.deb" % p)) for p in PACKAGES]
    r = run("dpkg", "-i", *map(str, debs), check=False,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    assert r.returncode == 0, r.stdout + r.stderr
    yield
    r = run("dpkg", "-P", *PACKAGES, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_module_is_enabled_the_debian_way(installed):
    snippet = pathlib.Path("/usr/share/nginx/modules-available/mod-http-encore.conf")
    assert snippet.read_text().strip() == "load_module modules/ngx_http_encore_module.so;"
    link = pathlib.Path("/etc/nginx/modules-enabled/50-mod-http-encore.conf")
    assert link.resolve() == snippet
    # the exact ABI of the nginx it was built for
    abi = run("dpkg-query", "-W", "-f=${Provides}", "nginx").stdout
    want = re.search(r"nginx-abi-[0-9.]+-[0-9]+", abi).group(0)
    depends = run("dpkg-query", "-W", "-f=${Depends}", "libnginx-mod-http-encore").stdout
    assert want in depends.split(", ")
    # the system nginx's own configuration loads it
    r = run("/usr/sbin/nginx", "-T", "-q", check=False)
    assert r.returncode == 0, r.stderr
    assert "load_module modules/ngx_http_encore_module.so;" in r.stdout


def test_workers_package_layout(installed):
    for w in WORKERS:
        assert os.access("/usr/sbin/encore-" + w, os.X_OK)
        conf = pathlib.Path("/etc/encore/%s.conf" % w).read_text()
        assert "http.listen = unix:/run/encore/%s.sock" % w in conf
        assert "${CREDENTIALS_DIRECTORY}/db-password" in conf
        assert "ENCORE_RUN_DIR" not in conf
        assert pathlib.Path("/usr/share/encore/schemas", w).is_dir()
    for w in AGENTS:
        assert os.access("/usr/sbin/encore-" + w, os.X_OK)
        conf = pathlib.Path("/etc/encore/%s.conf" % w).read_text()
        assert "http.listen = unix:/run/encore/%s.sock" % w in conf
        assert "ENCORE_RUN_DIR" not in conf and "db-password" not in conf
    assert not pathlib.Path("/usr/sbin/encore-probe").exists()
    assert os.access("/usr/sbin/encore-topics", os.X_OK)
    assert pathlib.Path("/usr/share/man/man8/encore-topics.8.gz").is_file()
    assert pwd.getpwnam("encore").pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert "www-data" in run("id", "-nG", "encore").stdout.split()
    st = os.stat("/run/encore")
    assert (st.st_mode & 0o777) == 0o750
    assert os.stat("/etc/encore/secrets").st_mode & 0o777 == 0o700


def test_units_verify(installed):
    for w in WORKERS:
        r = run("systemd-analyze", "verify", "encore-worker@%s.service" % w,
                "encore-worker@%s.socket" % w, check=False)
        assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
        # the socket systemd holds is the one the worker's settings name
        sock = unit_settings(SOCKET_UNIT, w, "Socket")
        conf = pathlib.Path("/etc/encore/%s.conf" % w).read_text()
        assert "http.listen = unix:%s" % sock["ListenStream"][0] in conf
    r = run("systemd-analyze", "verify", str(TOPICS_UNIT), check=False)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    for w in AGENTS:
        r = run("systemd-analyze", "verify", "encore-%s.service" % w, check=False)
        assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    s = unit_settings(UNIT, "catalog")
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("Type", "notify"), ("ReadWritePaths", "/run/encore")]:
        assert s[key] == [value], key
    # the topics before anything publishes, not at the cost of the worker
    unit = UNIT.read_text()
    assert re.search(r"^Wants=.*\bencore-topics\.service\b", unit, re.M), unit
    assert re.search(r"^After=.*\bencore-topics\.service\b", unit, re.M), unit
    assert not re.search(r"^(Requires|BindsTo)=.*encore-topics", unit, re.M)
    # only auth writes state (its keys and the JWKS nginx reads)
    dropin = pathlib.Path("/lib/systemd/system/encore-worker@auth.service.d/auth.conf")
    assert "ReadWritePaths=/var/lib/encore" in dropin.read_text()


def topic_policy(admin, topic):
    from confluent_kafka.admin import ConfigResource
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([res])[res].result(timeout=30)["cleanup.policy"].value


def test_topics_unit_makes_the_entity_topics_compacted(installed):
    """encore-topics.service's ExecStart, carried out the way systemd
    would (its Environment, then /etc/default/encore-workers), puts back
    the compaction of an entity topic that lost it."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
    schemas = sorted((ROOT / "schemas" / "events").glob("encore.*.json"))
    topics = pathlib.Path("/usr/share/encore/topics").read_text().split()
    streams = pathlib.Path("/usr/share/encore/streams").read_text().split()
    # a schema with topic configs of its own is a stream (the revocations)
    own = [p.name[:-len(".json")] for p in schemas
           if "x-encore-topic-configs" in json.loads(p.read_text())]
    assert own and streams == own
    assert topics == [p.name[:-len(".json")] for p in schemas
                      if p.name[:-len(".json")] not in own]
    s = unit_settings(TOPICS_UNIT, "")
    assert s["Type"] == ["oneshot"] and s["DynamicUser"] == ["yes"]
    env = {}
    for assignment in " ".join(s["Environment"]).split():
        k, _, v = assignment.partition("=")
        env[k] = v
    kafka = "127.0.0.1:%s" % os.environ["ENCORE_KAFKA_PORT"]
    env["ENCORE_KAFKA_BROKERS"] = kafka       # as /etc/default/encore-workers says
    argv, stream_argv = ([re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], a)
                          for a in line.split()] for line in s["ExecStart"])
    assert argv[0] == "/usr/sbin/encore-topics" and argv[-len(topics):] == topics, argv
    assert "cleanup.policy=compact" in argv, argv
    assert stream_argv[-len(streams):] == streams, stream_argv
    assert "cleanup.policy=delete" in stream_argv, stream_argv

    admin = AdminClient({"bootstrap.servers": kafka})
    victim = topics[0]
    res = ConfigResource(ConfigResource.Type.TOPIC, victim, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete",
                    incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(timeout=30)
    for _ in range(50):
        if topic_policy(admin, victim) == "delete":
            break
        time.sleep(0.2)
    assert topic_policy(admin, victim) == "delete"

    r = run(*argv, check=False, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for _ in range(50):
        if topic_policy(admin, victim) == "compact":
            break
        time.sleep(0.2)
    for t in topics:
        assert topic_policy(admin, t) == "compact", t
    r = run(*stream_argv, check=False, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for t in streams:
        assert topic_policy(admin, t) == "delete", t


def edge_conf(tmp):
    """encore-edge's configuration as installed, moved only off the
    system's port, pid and log files onto the test's; https enabled the
    way README.Debian says (tls.conf in tls.d/), with a certificate made
    here in place of the operator's."""
    conf = tmp / "edge"
    shutil.copytree("/etc/nginx/encore", conf)
    main = conf / "nginx.conf"
    text = main.read_text()
    for old, new in [("listen       80;", "listen       127.0.0.1:%s;" % EDGE_PORT),
                     ("/run/nginx.pid", str(tmp / "nginx.pid")),
                     ("/var/log/nginx/error.log", str(tmp / "nginx-error.log")),
                     ("include  /etc/nginx/encore/tls.d/*.conf;",
                      "include  %s/tls.d/*.conf;" % conf)]:
        assert old in text, old
        text = text.replace(old, new)
    main.write_text(text)
    tls = (conf / "tls.conf").read_text()
    for old, new in [("listen       443 ssl http2;",
                      "listen       127.0.0.1:%s ssl http2;" % HTTPS_PORT),
                     ("/etc/nginx/encore/tls/", str(tmp) + "/")]:
        assert old in tls, old
        tls = tls.replace(old, new)
    assert "ssl_stapling         on;" in tls
    (conf / "tls.conf").write_text(tls)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(tmp / "privkey.pem"), "-out", str(tmp / "fullchain.pem"))
    assert not list((conf / "tls.d").iterdir())           # off as shipped
    (conf / "tls.d" / "tls.conf").symlink_to("../tls.conf")
    log = conf / "log.conf"
    log.write_text(log.read_text().replace("/var/log/nginx/encore-access.log",
                                           str(tmp / "nginx-access.log")))
    return main


def test_edge_package(installed):
    conf = pathlib.Path("/etc/nginx/encore")
    text = (conf / "nginx.conf").read_text()
    assert "include /etc/nginx/modules-enabled/*.conf;" in text
    assert "root       /usr/share/encore/web;" in text
    assert pathlib.Path("/usr/share/encore/web/index.html").is_file()
    assert (conf / "server.d").is_dir()
    # https ships off: tls.conf is there, tls.d/ (what nginx.conf
    # includes) empty until the operator links it with a certificate
    assert "include  /etc/nginx/encore/tls.d/*.conf;" in text
    assert not list((conf / "tls.d").iterdir())
    tls = (conf / "tls.conf").read_text()
    for line in ("listen       443 ssl http2;",
                 "ssl_certificate      /etc/nginx/encore/tls/fullchain.pem;",
                 "ssl_protocols              TLSv1.2 TLSv1.3;",
                 "ssl_stapling         on;", "ssl_stapling_verify  on;"):
        assert line in tls, line
    for w in WORKERS:
        assert "server     unix:/run/encore/%s.sock" % w in (conf / "upstreams.conf").read_text()
    assert "/var/lib/encore/jwks.json" in (conf / "jwt.conf").read_text()
    for f in conf.glob("*.conf"):
        code = [l for l in f.read_text().splitlines() if not l.lstrip().startswith("#")]
        assert not re.search(r"@[A-Z_]+@", "\n".join(code)), f


@pytest.fixture
def unit_tmp():
    """Where the credentials and notify sockets go: the unit's User must
    reach it (pytest's own temporary directories are root's alone)."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="encore-deploy-"))
    os.chmod(tmp, 0o711)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def test_serves_through_system_nginx(installed, unit_tmp):
    tmp = unit_tmp
    secrets = RUN_DIR / "secrets"
    for w in WORKERS:
        d = pathlib.Path("/etc/encore/secrets", w)
        d.mkdir(mode=0o700, exist_ok=True)
        shutil.copyfile(secrets / ("pg-%s.password" % w), d / "db-password")
        shutil.copyfile(secrets / ("cursor-%s.key" % w), d / "cursor-key")
    pathlib.Path("/etc/default/encore-workers").write_text(
        "ENCORE_PG_PORT=%s\nENCORE_KAFKA_PORT=%s\n"
        % (os.environ["ENCORE_PG_PORT"], os.environ["ENCORE_KAFKA_PORT"]))

    procs, nginx_pid = [], tmp / "nginx.pid"
    try:
        for w in WORKERS:
            p = UnitProcess(w, tmp)
            procs.append(p)
            assert "READY=1" in p.ready()
            sock = pathlib.Path("/run/encore/%s.sock" % w)
            st = os.stat(sock)
            assert (st.st_mode & 0o777) == 0o660
            assert st.st_gid == pwd.getpwnam("www-data").pw_gid
            assert "(passed)" in p.log_path.read_text()
        assert pathlib.Path("/var/lib/encore/jwks.json").is_file()

        conf = edge_conf(tmp)
        run("/usr/sbin/nginx", "-c", str(conf), "-e", str(tmp / "nginx-error.log"))
        for _ in range(100):
            try:
                if requests.get(EDGE + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)

        # the packaged conf has a revocation zone: /readyz waits for a
        # replayed, fresh feed, which the edge agent posts; heartbeats
        # stand in for it here.  "replayed" counts only with the id of the
        # zone it was replayed into, which the edge answers with (as the
        # agent, the first post learns it)
        beat = {"revocations": [], "replayed": False,
                "through": int(time.time() * 1000)}
        r = requests.post(EDGE + "/internal/revocations", timeout=10, json=beat)
        assert r.status_code == 204, r.text
        zone = r.headers["Encore-Revocation-Zone"]
        beat.update(replayed=True, through=int(time.time() * 1000))
        r = requests.post(EDGE + "/internal/revocations", timeout=10, json=beat,
                          headers={"Encore-Revocation-Zone": zone})
        assert r.status_code == 204, r.text
        r = requests.get(EDGE + "/readyz", timeout=10)
        assert r.status_code == 200, r.text
        assert "Strict-Transport-Security" not in r.headers
        # https and HTTP/2 with the packaged tls.conf
        out = run("curl", "-sS", "--http2", "--cacert", str(tmp / "fullchain.pem"),
                  "-o", "/dev/null", "-D", "-", "-w", "%{http_version}",
                  "https://127.0.0.1:%s/readyz" % HTTPS_PORT).stdout
        assert out.startswith("HTTP/2 200") and out.endswith("\n2"), out
        assert "strict-transport-security: max-age=63072000" in out, out
        r = requests.get(EDGE + "/api/v1/artists?limit=1", timeout=10)
        assert r.status_code == 200, r.text
        assert "items" in r.json()
        # the jwt module checks a token the packaged auth worker signed
        name = "pkg%d" % os.getpid()
        r = requests.post(EDGE + "/api/v1/auth/register", timeout=30,
                          json={"username": name, "email": name + "@example.test",
                                "password": "correct horse battery"})
        assert r.status_code == 201, r.text
        r = requests.post(EDGE + "/api/v1/auth/login", timeout=30,
                          json={"login": name, "password": "correct horse battery"})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        r = requests.get(EDGE + "/api/v1/auth/me", timeout=10,
                         headers={"Authorization": "Bearer " + token})
        assert r.status_code == 200, r.text
        assert r.json()["username"] == name
        r = requests.get(EDGE + "/api/v1/auth/me", timeout=10,
                         headers={"Authorization": "Bearer " + token[:-4] + "AAAA"})
        assert r.status_code == 401
    finally:
        if nginx_pid.exists():
            pid = int(nginx_pid.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(300):
                if not os.path.exists("/proc/%d" % pid):
                    break
                time.sleep(0.1)
        for p in procs:
            stopping, rc = p.stop()
            assert "STOPPING=1" in stopping
            assert rc == 0, (tmp / (p.instance + ".log")).read_text()
        for w in WORKERS:
            shutil.rmtree(pathlib.Path("/etc/encore/secrets", w), ignore_errors=True)
        for f in pathlib.Path("/var/lib/encore").glob("*"):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
