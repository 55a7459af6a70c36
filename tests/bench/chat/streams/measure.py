"""tests/bench/chat/streams: N concurrent open streams held by one server.

Driven by ./run.  For each N, a fresh holder (holder.c: libencore's HTTP
server, http.threads pool threads, one route that defers its answer) and
N client connections over its unix socket, all in this process
(selectors).  Phases, each measured on the holder's /proc/<pid>:

  base     started, a few requests served
  conns    N keepalive connections, each after one GET /healthz: the
           peer, what a connection costs without a stream
  waiting  on each connection GET /stream, deferred (suspended, no token
           yet: a reply waiting for its first token)
  begun    status and headers sent, 10 tokens read by every client
  more     100 tokens more, one at a time: each written to every stream
           and read by every client before the next (CPU per token)
  ended    done event, enc_defer_end, the terminating chunk read

RSS is VmRSS; "per stream" is (RSS(phase) - RSS(conns)) / N, the
stream's own memory on top of its connection's; "per conn" is
(RSS(conns) - RSS(base)) / N.  CPU is the holder's utime+stime
(clock ticks) over IDLE seconds with N streams waiting, then with N
streams begun: a busy loop would show as a whole core.  /healthz's
latency (median of 20 on a fresh connection) with N streams open against
the same before any: no pool thread is held.
"""
import os
import selectors
import socket
import statistics
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])      # utime, stime


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.reset()

    def reset(self):
        self.raw = bytearray()
        self.head = None          # headers, once complete
        self.body = bytearray()   # dechunked
        self.pos = 0              # parse position in raw after headers
        self.done = False         # last chunk seen

    def feed(self, data):
        self.raw += data
        if self.head is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head = bytes(self.raw[:i + 4])
            self.pos = i + 4
        while not self.done:
            j = self.raw.find(b"\r\n", self.pos)
            if j < 0:
                return
            n = int(self.raw[self.pos:j], 16)
            if len(self.raw) < j + 2 + n + 2:
                return
            if n == 0:
                self.done = True
                return
            self.body += self.raw[j + 2:j + 2 + n]
            self.pos = j + 2 + n + 2


def get_simple(path, target, conn=None):
    """a GET answered with Content-Length, on conn or a fresh socket"""
    s = conn.s if conn else socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if conn is None:
        s.connect(path)
    s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while True:
        buf += s.recv(65536)
        i = buf.find(b"\r\n\r\n")
        if i >= 0:
            cl = 0
            for line in buf[:i].split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    cl = int(v)
            if len(buf) >= i + 4 + cl:
                break
    if conn is None:
        s.close()
    return buf


def healthz_ms(path):
    t = []
    for _ in range(20):
        t0 = time.monotonic()
        get_simple(path, b"/healthz")
        t.append((time.monotonic() - t0) * 1000)
    return statistics.median(t)


def pump(conns, until, timeout=120):
    """reads from every connection until until(c) holds for all"""
    sel = selectors.DefaultSelector()
    left = {c for c in conns if not until(c)}
    for c in left:
        sel.register(c.s, selectors.EVENT_READ, c)
    deadline = time.monotonic() + timeout
    while left:
        if time.monotonic() > deadline:
            raise RuntimeError("%d streams stalled" % len(left))
        for key, _ in sel.select(1.0):
            c = key.data
            data = c.s.recv(65536)
            if not data:
                raise RuntimeError("a stream was closed")
            c.feed(data)
            if until(c):
                sel.unregister(c.s)
                left.discard(c)
    sel.close()


class Holder:
    def __init__(self, binary, path, nthreads):
        self.p = subprocess.Popen([binary, "unix:" + path, str(nthreads)],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError("holder did not start: %r" % line)
        self.pid = int(line.split()[1])

    def cmd(self, c):
        self.p.stdin.write(c + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def count(self):
        return int(self.cmd("count").split()[1])

    def quit(self):
        """the time the drain took once the clients had closed"""
        out = self.cmd("quit")
        self.p.wait(30)
        return out


def run_one(binary, tmp, n, nthreads, idle, reused):
    path = os.path.join(tmp, "holder-%d.sock" % n)
    h = Holder(binary, path, nthreads)
    r = {"n": n, "kind": "reused" if reused else "fresh"}
    try:
        for _ in range(5):
            get_simple(path, b"/healthz")
        r["healthz_before"] = healthz_ms(path)
        r["base"] = rss_kb(h.pid)
        r["threads"] = threads(h.pid)

        conns = [Conn(path) for _ in range(n)]
        if reused:
            for c in conns:
                get_simple(path, b"/healthz", c)
        else:
            time.sleep(0.5)       # libmicrohttpd has them all
        r["conns"] = rss_kb(h.pid)

        for c in conns:
            c.s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n"
                        b"Accept: text/event-stream\r\n\r\n")
        deadline = time.monotonic() + 60
        while h.count() < n:
            if time.monotonic() > deadline:
                raise RuntimeError("only %d of %d deferred" % (h.count(), n))
            time.sleep(0.05)
        r["waiting"] = rss_kb(h.pid)
        r["threads_waiting"] = threads(h.pid)
        r["healthz_open"] = healthz_ms(path)
        t0 = cpu_ticks(h.pid)
        time.sleep(idle)
        r["cpu_waiting_ms"] = (cpu_ticks(h.pid) - t0) * 1000 / HZ

        assert h.cmd("begin") == "ok begin %d failed 0" % n
        assert h.cmd("tick 10") == "ok tick failed 0"
        pump(conns, lambda c: c.body.count(b"event: token") >= 10)
        r["begun"] = rss_kb(h.pid)
        t0 = cpu_ticks(h.pid)
        time.sleep(idle)
        r["cpu_begun_ms"] = (cpu_ticks(h.pid) - t0) * 1000 / HZ

        # paced as a model talks: one token to every stream, read by
        # every client, then the next (a burst would be coalesced into
        # one chunk and cost less per token)
        t0 = cpu_ticks(h.pid)
        for k in range(11, 111):
            assert h.cmd("tick 1") == "ok tick failed 0"
            pump(conns, lambda c: c.body.count(b"event: token") >= k)
        r["tokens_cpu_us"] = ((cpu_ticks(h.pid) - t0) * 1e6 / HZ
                              / (100 * n))
        r["more"] = rss_kb(h.pid)
        r["body_bytes"] = len(conns[0].body)

        assert h.cmd("end") == "ok end %d failed 0" % n
        pump(conns, lambda c: c.done)
        r["ended"] = rss_kb(h.pid)
        assert all(c.head.startswith(b"HTTP/1.1 200") for c in conns)
        assert h.count() == 0
        for c in conns:
            c.s.close()
    finally:
        r["quit"] = h.quit()
    return r


def main():
    binary, tmp = sys.argv[1], sys.argv[2]
    ns = [int(x) for x in os.environ.get("BENCH_STREAMS",
                                         "100,500,1000").split(",")]
    nthreads = int(os.environ.get("BENCH_THREADS", "4"))
    idle = float(os.environ.get("BENCH_IDLE", "3"))
    rows = [run_one(binary, tmp, n, nthreads, idle, reused)
            for reused in (True, False) for n in ns]

    print("http.threads = %d; idle windows %.0f s; kernel clock %d Hz"
          % (nthreads, idle, HZ))
    print()
    print("| connections | streams | RSS base | + conns | waiting "
          "| begun (10 tok) | more (110 tok) | ended |")
    print("|-------------|--------:|---------:|--------:|--------:"
          "|---------------:|---------------:|------:|")
    for r in rows:
        print("| %s | %d | %d | %d | %d | %d | %d | %d |" % (
            r["kind"], r["n"], r["base"], r["conns"], r["waiting"],
            r["begun"], r["more"], r["ended"]))
    print()
    print("(RSS in KiB)")
    print()
    print("| connections | streams | per conn (peer) | per stream waiting "
          "| per stream begun | per stream after 110 tok "
          "| threads idle / open |")
    print("|-------------|--------:|----------------:|-------------------:"
          "|-----------------:|-------------------------:"
          "|--------------------:|")
    for r in rows:
        n = r["n"]
        print("| %s | %d | %.0f B | %.0f B | %.0f B | %.0f B | %d / %d |" % (
            r["kind"], n, (r["conns"] - r["base"]) * 1024 / n,
            (r["waiting"] - r["conns"]) * 1024 / n,
            (r["begun"] - r["conns"]) * 1024 / n,
            (r["more"] - r["conns"]) * 1024 / n,
            r["threads"], r["threads_waiting"]))
    print()
    print("| connections | streams | CPU idle, waiting | CPU idle, begun "
          "| CPU per token | /healthz before | /healthz with N open |")
    print("|-------------|--------:|------------------:|----------------:"
          "|--------------:|----------------:|---------------------:|")
    for r in rows:
        print("| %s | %d | %.0f ms / %.0f s | %.0f ms / %.0f s | %.1f µs "
              "| %.2f ms | %.2f ms |" % (
                  r["kind"], r["n"], r["cpu_waiting_ms"], idle,
                  r["cpu_begun_ms"],
                  idle, r["tokens_cpu_us"], r["healthz_before"],
                  r["healthz_open"]))
    print()
    print("body bytes per stream read by the client: %d"
          % rows[-1]["body_bytes"])
    for r in rows:
        print("%s %d: %s" % (r["kind"], r["n"], r["quit"]))


if __name__ == "__main__":
    main()
