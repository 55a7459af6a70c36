#!/usr/bin/env python3
"""Demo posts and comment threads for `make run`, through the public API.

    community.py BASE_URL [DATA_JSON]

Signs in as the demo users auto/demo-data registered, writes the posts of
community.json about Chinook artists (each naming one of the artist's
albums as the catalog has it) and their comment threads, several levels
deep.  Idempotent: a post its author already has (same title) is kept, and
its thread is written only when it has no comments yet.

The platform is eventually consistent: content learns of the artists from
catalog's events and comments of the posts from content's, so a 422 on
artist_ids or a 404 on a new post's comments is retried for a while.
Standard library only: it runs on a fresh machine before any venv exists.
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

PASSWORD = "encore-demo"
WAIT_SECONDS = 90           # for a replica to catch up


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Api:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, token=None, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, e.read().decode("utf-8", "replace")) from None

    def retry(self, statuses, method, path, token=None, body=None):
        """The call, retried while it answers one of statuses (a replica
        that has not caught up yet)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                return self.call(method, path, token, body)
            except ApiError as e:
                if e.status not in statuses or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def login(api, username):
    for _ in range(20):
        try:
            r = api.call("POST", "/api/v1/auth/login",
                         body={"login": username, "password": PASSWORD})
            return r["access_token"], r["user"]["id"]
        except ApiError as e:
            if e.status != 429:
                raise
            time.sleep(1)
    raise SystemExit(f"demo data: {username} could not sign in (rate limited)")


def find_artist(api, name):
    q = urllib.parse.quote(name)
    page = api.call("GET", f"/api/v1/artists?q={q}&limit=100")
    for a in page["items"]:
        if a["name"] == name:
            return a
    raise SystemExit(f"demo data: the catalog has no artist named {name!r};"
                     " was the Chinook import run?")


def first_album(api, artist):
    page = api.call("GET", f"/api/v1/artists/{artist['id']}/albums?limit=1")
    return page["items"][0]["title"] if page["items"] else artist["name"]


def existing_titles(api, token, user_id, drafts):
    """Titles of the author's posts (published, or drafts)."""
    query = "status=draft" if drafts else f"author_id={user_id}"
    titles, cursor = {}, None
    while True:
        path = f"/api/v1/posts?{query}&limit=100"
        if cursor:
            path += "&cursor=" + urllib.parse.quote(cursor)
        page = api.call("GET", path, token)
        for p in page["items"]:
            titles[p["title"]] = p["id"]
        cursor = page["next_cursor"]
        if not cursor:
            return titles


def write_thread(api, tokens, post_id, nodes, parent=None):
    n = 0
    for author, body, replies in nodes:
        c = api.retry({404}, "POST", f"/api/v1/posts/{post_id}/comments",
                      tokens[author][0],
                      {"body": body, "parent_id": parent})
        n += 1 + write_thread(api, tokens, post_id, replies, c["id"])
    return n


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    api = Api(sys.argv[1])
    path = sys.argv[2] if len(sys.argv) > 2 else __file__.rsplit("/", 1)[0] + "/community.json"
    with open(path, encoding="utf-8") as f:
        data = json.load(f)

    users = sorted({p["author"] for p in data["posts"] + data["drafts"]}
                   | {c[0] for p in data["posts"] for c in walk(p["thread"])})
    tokens = {u: login(api, u) for u in users}
    artists = {}

    new_posts = new_comments = 0
    for spec, drafts in [(p, False) for p in data["posts"]] + \
                        [(p, True) for p in data["drafts"]]:
        token, uid = tokens[spec["author"]]
        ids = []
        for name in spec["artists"]:
            if name not in artists:
                artists[name] = find_artist(api, name)
            ids.append(artists[name]["id"])
        album = first_album(api, artists[spec["artists"][0]])
        title = spec["title"].replace("{album}", album)[:200]
        have = existing_titles(api, token, uid, drafts)
        post_id = have.get(title)
        if post_id is None:
            post = api.retry({422}, "POST", "/api/v1/posts", token, {
                "title": title,
                "body": spec["body"].replace("{album}", album),
                "status": "draft" if drafts else "published",
                "artist_ids": ids,
                "tags": spec["tags"],
            })
            post_id = post["id"]
            new_posts += 1
        if drafts:
            continue
        comments = api.retry({404}, "GET",
                             f"/api/v1/posts/{post_id}/comments?limit=1")
        if not comments["items"]:
            new_comments += write_thread(api, tokens, post_id, spec["thread"])

    print(f"{new_posts} new posts, {new_comments} new comments")


def walk(nodes):
    for node in nodes:
        yield node
        yield from walk(node[2])


if __name__ == "__main__":
    main()
