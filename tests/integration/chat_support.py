"""Shared helpers of the chat tests (test_chat*.py): callers, sessions,
questions asked buffered (201) or streamed (SSE, read event by event as
they arrive), and the fake provider (tests/fakes/fake_llm.py) the worker
is pointed at by a restart with ENCORE_PROVIDER_* set."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from conftest import ROOT, RUN_DIR, free_port, stack, url, wait_until
from feedback_support import Caller, callers, new_caller  # noqa: F401

SESSIONS = "/api/v1/chat/sessions"
TOPIC = "encore.chat.messages"


def messages_path(sid):
    return "%s/%s/messages" % (SESSIONS, sid)


def new_session(caller, **body):
    r = requests.post(url(SESSIONS), json=body, headers=caller.headers)
    assert r.status_code == 201, r.text
    return r.json()


def ask(caller, sid, content, timeout=60):
    """The buffered form: the response (201 {user_message, assistant_message})."""
    return requests.post(url(messages_path(sid)), json={"content": content},
                         headers=caller.headers, timeout=timeout)


class Stream:
    """A streamed answer read event by event: (event, data, arrived at)."""

    def __init__(self, caller, sid, content, timeout=60):
        self.t0 = time.time()
        self.r = requests.post(url(messages_path(sid)), json={"content": content},
                               headers=dict(caller.headers, Accept="text/event-stream"),
                               stream=True, timeout=timeout)
        self.events = []

    def __iter__(self):
        event, data = None, []
        # SSE is UTF-8 whatever the Content-Type says (requests would read
        # text/event-stream without a charset as ISO-8859-1)
        for raw in self.r.iter_lines(chunk_size=1):
            line = raw.decode("utf-8")
            if line == "":
                if event is not None:
                    item = (event, json.loads("\n".join(data)), time.time())
                    self.events.append(item)
                    yield item
                event, data = None, []
            elif line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                data.append(line[len("data: "):])

    def read_all(self):
        for _ in self:
            pass
        return self.events

    def close(self):
        self.r.close()

    def text(self):
        return "".join(d["content"] for e, d, _ in self.events if e == "token")


def ask_on_socket(caller, sid, content):
    """A streamed question on a socket of its own, for one the fake never
    answers ([[fake:hang]]): no headers come back to wait for.  Open until
    closed; status_of() reads its answer's status."""
    body = json.dumps({"content": content}).encode()
    s = socket.create_connection(
        ("127.0.0.1", int(os.environ.get("ENCORE_EDGE_PORT", "18080"))), timeout=30)
    s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
               "Content-Length: %d\r\n\r\n"
               % (messages_path(sid), caller.token, len(body))).encode() + body)
    return s


def status_of(sock):
    """The status of the answer on sock (read up to the status line)."""
    got = b""
    while b"\r\n" not in got:
        more = sock.recv(1)
        assert more, got
        got += more
    return int(got.split(b" ")[1])


# ---- the fake provider -------------------------------------------------------------

class FakeLLM:
    def __init__(self, key_file=None):
        self.port = free_port()
        args = [sys.executable, str(ROOT / "tests" / "fakes" / "fake_llm.py"),
                "--port", str(self.port)]
        if key_file:
            args += ["--key-file", str(key_file)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert "ready" in line, line
        self.base = "http://127.0.0.1:%d" % self.port

    def requests(self):
        return requests.get(self.base + "/_fake/requests", timeout=10).json()

    def request(self, marker):
        """The record of the one request whose messages hold marker, or None."""
        got = [r for r in self.requests() if marker in json.dumps(r["messages"])]
        assert len(got) <= 1, got
        return got[0] if got else None

    def reset(self):
        requests.post(self.base + "/_fake/reset", timeout=10)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def restart_chat(**env):
    """The chat worker handed over to a successor started with env (the
    ENCORE_* overrides of its keys); none: as the stack runs it."""
    full = dict(os.environ)
    for k in [k for k in full if k.startswith("ENCORE_PROVIDER_")]:
        del full[k]
    full.update(env)
    r = subprocess.run([str(ROOT / "auto" / "stack"), "stop-worker", "chat"], env=full,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(ROOT / "auto" / "stack"), "start-worker", "chat"], env=full,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """The fake provider, and the chat worker pointed at it for the module;
    the worker as the stack runs it (retrieval-only) afterwards."""
    fake = FakeLLM()
    restart_chat(ENCORE_PROVIDER_URL=fake.base, ENCORE_PROVIDER_MODEL="fake-model",
                 ENCORE_PROVIDER_FIRST_TOKEN_TIMEOUT_MS="2000",
                 ENCORE_PROVIDER_RETRIES="0")
    try:
        yield fake
    finally:
        restart_chat()
        fake.stop()
