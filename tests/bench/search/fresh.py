"""tests/bench/search/fresh.py EDGE RATE SECONDS: writes published posts
through the edge at RATE a second for SECONDS (threads pacing themselves
on a shared schedule) and prints the ids written, one a line.  The
freshness is measured from the database afterwards (run): each post's
event from its write (content's outbox row) to its application by the
search worker (its inbox row)."""
import sys
import threading
import time
import uuid

import requests

edge, rate, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
name = "bench" + uuid.uuid4().hex[:10]
r = requests.post(edge + "/api/v1/auth/register",
                  json={"username": name, "email": name + "@bench.test",
                        "password": "bench-password-1"})
assert r.status_code == 201, r.text
tok = requests.post(edge + "/api/v1/auth/login",
                    json={"login": name, "password": "bench-password-1"}).json()["access_token"]
h = {"Authorization": "Bearer " + tok}

n = int(rate * secs)
start = time.monotonic() + 0.5
lock = threading.Lock()
nxt = [0]
ids, errors = [], []


def writer():
    s = requests.Session()
    while True:
        with lock:
            i = nxt[0]
            nxt[0] += 1
        if i >= n:
            return
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        r = s.post(edge + "/api/v1/posts", headers=h,
                   json={"title": "Fresh %d %s" % (i, uuid.uuid4().hex[:8]),
                         "body": "freshness probe", "status": "published"})
        if r.status_code == 201:
            ids.append(r.json()["id"])
        else:
            errors.append(r.status_code)


threads = [threading.Thread(target=writer) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - start
print("# %d written in %.1f s (%.0f/s), %d failed" % (len(ids), took, len(ids) / took,
                                                       len(errors)), file=sys.stderr)
print("\n".join(ids))
