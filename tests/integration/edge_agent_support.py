"""A stand-in for the edge's POST /internal/revocations and a private
encore-edge-agent pointed at it: the agent's own behaviour (replay,
heartbeats, retries, a restarted edge) without nginx."""
import http.server
import json
import os
import pathlib
import subprocess
import threading
import time
import uuid

from conftest import ROOT, RUN_DIR, UnixHTTPConnection, free_port


class MockEdge:
    """Records every post; answers `status` with the zone id header
    `zone` (None: no header)."""

    def __init__(self, zone="zone-1"):
        self.posts = []
        self.zones_sent = []     # each post's request header, in order
        self.status = 204
        self.zone = zone
        self.refuse = set()      # subs whose entries make a post 400
        self.refused = []        # the bodies so refused
        self.lock = threading.Lock()
        self.port = free_port()
        edge = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with edge.lock:
                    status, zone = edge.status, edge.zone
                    if status < 300 and any(
                            e.get("sub") in edge.refuse
                            for e in json.loads(body).get("revocations", [])):
                        # as the edge refuses a batch with one bad entry
                        status = 400
                        edge.refused.append(json.loads(body))
                    if status < 300:
                        edge.posts.append((time.time(), json.loads(body),
                                           self.headers.get("Content-Type")))
                        edge.zones_sent.append(self.headers.get("Encore-Revocation-Zone"))
                self.send_response(status)
                if zone is not None:
                    self.send_header("Encore-Revocation-Zone", zone)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/internal/revocations" % self.port

    def snapshot(self):
        with self.lock:
            return list(self.posts)

    def entries(self):
        return [e for _, p, _ in self.snapshot() for e in p["revocations"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Agent:
    """encore-edge-agent with its own socket and log, posting to url."""

    def __init__(self, url, name=None, **settings):
        self.name = name or "agent-%s" % uuid.uuid4().hex[:8]
        self.sock = RUN_DIR / "run" / ("%s.sock" % self.name)
        self.log = RUN_DIR / "log" / ("%s.log" % self.name)
        env = dict(os.environ)
        env.update({"ENCORE_AGENT_EDGE_URL": url,
                    "ENCORE_HTTP_LISTEN": "unix:%s" % self.sock,
                    "ENCORE_LOG_FILE": str(self.log)})
        for k, v in settings.items():
            env["ENCORE_AGENT_" + k.upper()] = str(v)
        build = env.get("ENCORE_BUILD", "build")
        self.proc = subprocess.Popen(
            [str(ROOT / build / "bin" / "encore-edge-agent"),
             "-c", "conf/workers/edge-agent.conf"],
            cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(self, path):
        conn = UnixHTTPConnection(str(self.sock), timeout=5)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        except OSError:
            return None, b""
        finally:
            conn.close()

    def ready(self):
        return self.get("/readyz")[0] == 200

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
