#!/usr/bin/env python3
"""A fake OpenAI-compatible chat model for the tests (stdlib only).

    python3 tests/fakes/fake_llm.py --port N [--host H] [--key-file F]
                                    [--retry-after S]

Prints "ready" on stdout once listening ("ready PORT" with --port 0, which
picks a free port), then serves until killed.

POST /v1/chat/completions answers as OpenAI's API does, streamed
(Server-Sent Events, chunked) when the body says "stream": true, whole
otherwise. What it does is picked by a marker in the LAST user message,
"[[fake:NAME]]" (default normal):

  normal      ~12 tokens 20 ms apart, each
              data: {"choices":[{"delta":{"content":"..."}}]}
              then a chunk with finish_reason "stop" and data: [DONE].
              The text names the titles of the sources it found in the
              system prompt (lines "[n] {json with a title}"), so a test
              can see that grounding reached the model.
  slow_first  the first token after 3 s, then as normal
  slow        40 tokens 150 ms apart
  r429        429, Retry-After: 7 (--retry-after), an OpenAI error body
  r500        500;  r401: 401 (as a bad key gets)
  cut         3 tokens, then the connection closes without [DONE]
              (the chunked body is left unterminated)
  malformed   2 tokens, then "data: {not json", then more tokens
  hang        200 and the headers, then nothing until the client leaves
  json        the whole answer as one JSON body even when asked to stream
              (as a server that ignores "stream" does)
  links       as normal, but the answer is Markdown with links and an
              image off the site (as a model talked into them by a post
              it read would write) and one relative link (LINKS_ANSWER)
  NAME_once   NAME the first time this exact last user message is seen,
              normal after (a retry that succeeds: r429_once, r500_once)

With --key-file, a request whose "Authorization: Bearer" differs from the
file's content (surrounding whitespace stripped) gets 401.

GET /_fake/requests: a JSON list, one object per completion request, in
arrival order: {seq, scenario, model, stream, messages, authorized,
bearer_present, tokens_sent, started_at, first_token_at, last_token_at,
finished, client_closed} (never the key). Timestamps are time.time()
floats (null until it happens). finished: the fake did all its scenario
meant to; client_closed: the client went away before that.
POST /_fake/reset empties it.
"""

import argparse
import json
import re
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = re.compile(r"\[\[fake:([A-Za-z0-9_]+)\]\]")
SOURCE_LINE = re.compile(r"^\s*\[(\d+)\]\s*(\{.*\})\s*$")
SCENARIOS = {"normal", "slow_first", "slow", "r429", "r500", "r401", "cut",
             "malformed", "hang", "json", "links"}
LINKS_ANSWER = (
    "Your account needs checking. "
    "[Reset your Encore password here](https://evil.example/reset) "
    "![the cover](https://evil.example/cover.png) "
    "or <https://evil.example/auto> or https://evil.example/bare "
    "or [the help desk](//evil.example/help) or [mail us](mailto:x@evil.example). "
    "The catalog's own: [search for Powerslave](/search?q=Powerslave).")


class State:
    def __init__(self, key):
        self.key = key
        self.lock = threading.Lock()
        self.requests = []
        self.seen = set()
        self.seq = 0

    def add(self, rec):
        with self.lock:
            self.seq += 1
            rec["seq"] = self.seq
            self.requests.append(rec)

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.requests))

    def reset(self):
        with self.lock:
            self.requests = []
            self.seen = set()

    def first_time(self, text):
        with self.lock:
            if text in self.seen:
                return False
            self.seen.add(text)
            return True


class ClientGone(Exception):
    pass


def last_user_text(messages):
    for m in reversed(messages if isinstance(messages, list) else []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else json.dumps(c)
    return ""


def source_titles(messages):
    titles = []
    for m in messages if isinstance(messages, list) else []:
        if not isinstance(m, dict) or m.get("role") != "system":
            continue
        content = m.get("content")
        if not isinstance(content, str):
            continue
        for line in content.splitlines():
            match = SOURCE_LINE.match(line)
            if not match:
                continue
            try:
                src = json.loads(match.group(2))
            except ValueError:
                continue
            if isinstance(src, dict) and isinstance(src.get("title"), str):
                titles.append(src["title"])
    return titles


def answer_tokens(messages, n=12):
    titles = source_titles(messages)
    if titles:
        words = ("From the sources, here's what the catalog holds: "
                 + "; ".join(titles) + ".").split(" ")
    else:
        words = ("I found nothing in the catalog about that, but here's "
                 "a general answer — music is great.").split(" ")
    filler = "That is all I can tell you about it for now.".split(" ")
    i = 0
    while len(words) < n:
        words.append(filler[i % len(filler)])
        i += 1
    return [w + (" " if i + 1 < len(words) else "")
            for i, w in enumerate(words)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm/1"

    def log_message(self, fmt, *args):
        pass

    # -- plumbing -----------------------------------------------------------

    def send_json(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def error_body(self, status, message, etype, code=None):
        return {"error": {"message": message, "type": etype, "param": None,
                          "code": code}}

    def client_left(self):
        """True when the peer has closed its side (EOF is readable)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            data = self.connection.recv(1, socket.MSG_PEEK)
            return data == b""
        except OSError:
            return True

    def wait(self, seconds):
        """Sleeps, raising ClientGone as soon as the client leaves."""
        deadline = time.time() + seconds
        while True:
            left = deadline - time.time()
            if left <= 0:
                return
            try:
                r, _, _ = select.select([self.connection], [], [],
                                        min(left, 0.05))
            except (OSError, ValueError):
                raise ClientGone()
            if r:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    raise ClientGone()
                if data == b"":
                    raise ClientGone()
                time.sleep(min(left, 0.05))

    def chunk(self, data):
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    def event(self, obj):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        self.chunk(b"data: " + text.encode() + b"\n\n")

    # -- routes -------------------------------------------------------------

    def do_GET(self):
        if self.path == "/_fake/requests":
            self.send_json(200, self.server.state.snapshot())
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/_fake/reset":
            self.server.state.reset()
            self.send_json(200, {"ok": True})
            return
        if self.path != "/v1/chat/completions":
            self.send_json(404, self.error_body(404, "unknown path",
                                               "invalid_request_error"))
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            self.send_json(400, self.error_body(400, "body is not JSON",
                                                "invalid_request_error"))
            return
        self.completion(body)

    def completion(self, body):
        state = self.server.state
        messages = body.get("messages")
        text = last_user_text(messages)
        match = MARKER.search(text)
        scenario = match.group(1) if match else "normal"
        if scenario.endswith("_once"):
            scenario = (scenario[:-5] if state.first_time(text)
                        else "normal")
        if scenario not in SCENARIOS:
            scenario = "normal"
        auth = self.headers.get("Authorization") or ""
        bearer = auth[7:] if auth.startswith("Bearer ") else None
        authorized = state.key is None or bearer == state.key
        rec = {"scenario": scenario, "model": body.get("model"),
               "stream": bool(body.get("stream")), "messages": messages,
               "authorized": authorized, "bearer_present": bearer is not None,
               "tokens_sent": 0, "started_at": time.time(),
               "first_token_at": None, "last_token_at": None,
               "finished": False, "client_closed": False}
        state.add(rec)
        try:
            self.play(rec, scenario, messages, authorized)
        except ClientGone:
            rec["client_closed"] = True
            self.close_connection = True

    def play(self, rec, scenario, messages, authorized):
        if not authorized or scenario == "r401":
            self.send_json(401, self.error_body(
                401, "Incorrect API key provided.", "invalid_request_error",
                "invalid_api_key"))
            rec["finished"] = True
            return
        if scenario == "r429":
            self.send_json(429, self.error_body(
                429, "Rate limit reached for requests.", "requests",
                "rate_limit_exceeded"),
                [("Retry-After", str(self.server.retry_after))])
            rec["finished"] = True
            return
        if scenario == "r500":
            self.send_json(500, self.error_body(
                500, "The server had an error while processing your request.",
                "server_error"))
            rec["finished"] = True
            return

        n, gap, first = 12, 0.02, 0.02
        if scenario == "slow":
            n, gap, first = 40, 0.15, 0.15
        elif scenario == "slow_first":
            first = 3.0
        tokens = answer_tokens(messages, n)
        if scenario == "links":
            words = LINKS_ANSWER.split(" ")
            tokens = [w + (" " if i + 1 < len(words) else "")
                      for i, w in enumerate(words)]
        elif scenario == "cut":
            tokens = tokens[:3]
        elif scenario == "malformed":
            tokens = tokens[:2] + [None] + tokens[2:]

        if not rec["stream"] or scenario == "json":
            self.whole(rec, scenario, tokens, first)
            return

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        if scenario == "hang":
            while True:
                self.wait(0.2)
        created = int(time.time())
        for i, tok in enumerate(tokens):
            self.wait(first if i == 0 else gap)
            if tok is None:
                self.chunk(b"data: {not json\n\n")
                continue
            self.event({"id": "chatcmpl-fake", "object":
                        "chat.completion.chunk", "created": created,
                        "model": rec["model"], "choices": [
                            {"index": 0, "delta": {"content": tok},
                             "finish_reason": None}]})
            now = time.time()
            if rec["first_token_at"] is None:
                rec["first_token_at"] = now
            rec["last_token_at"] = now
            rec["tokens_sent"] += 1
        if scenario == "cut":
            rec["finished"] = True
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.event({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                    "created": created, "model": rec["model"], "choices": [
                        {"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self.event("[DONE]")
        self.chunk(b"")
        rec["finished"] = True

    def whole(self, rec, scenario, tokens, first):
        if scenario == "hang":
            while True:
                self.wait(0.2)
        self.wait(first)
        content = "".join(t for t in tokens if t is not None)
        rec["tokens_sent"] = len([t for t in tokens if t is not None])
        rec["first_token_at"] = rec["last_token_at"] = time.time()
        if scenario == "malformed":
            data = b'{"choices": [{not json'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif scenario == "cut":
            data = json.dumps({"choices": [{"message": {
                "role": "assistant", "content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.send_json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion",
                "created": int(time.time()), "model": rec["model"],
                "choices": [{"index": 0, "message": {
                    "role": "assistant", "content": content},
                    "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": len(tokens),
                          "total_tokens": len(tokens)}})
        rec["finished"] = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True,
                    help="port to listen on (0: a free one, printed)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--key-file", help="the API key requests must bear")
    ap.add_argument("--retry-after", type=int, default=7,
                    help="the Retry-After of r429 (seconds, default 7)")
    args = ap.parse_args()
    key = None
    if args.key_file:
        with open(args.key_file, encoding="utf-8") as f:
            key = f.read().strip()
    srv = Server((args.host, args.port), Handler)
    srv.state = State(key)
    srv.retry_after = args.retry_after
    if args.port == 0:
        print("ready %d" % srv.server_address[1], flush=True)
    else:
        print("ready", flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    srv.server_close()


if __name__ == "__main__":
    main()
