"""The demo community (infrastructure/demo/community.py, run by `make run`)
against the test stack: posts about catalog artists, naming one of their
albums, with comment threads several levels deep, written by the demo
users through the edge; a second run adds nothing.

The test stack has no Chinook catalog, so the data file is this test's
own, in community.json's format, about artists it creates."""
import json
import subprocess
import sys

import requests

from catalog_support import bearer, hexid, mod, new_album, new_artist, tokens  # noqa: F401
from conftest import ROOT, EDGE, register, url

SCRIPT = ROOT / "infrastructure" / "demo" / "community.py"


def run_script(data_file):
    r = subprocess.run([sys.executable, str(SCRIPT), EDGE, str(data_file)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def depths(nodes, depth=0):
    for author, body, replies in nodes:
        yield depth
        yield from depths(replies, depth + 1)


def test_demo_community_is_written_once(mod, tmp_path):  # noqa: F811
    # the demo users: community.py signs in with the demo password
    users = [register("demo_%s" % hexid(8), password="encore-demo")[0]["username"]
             for _ in range(2)]
    artist = new_artist(mod)
    album = new_album(mod, artist["id"])
    a, b = users
    thread = [[a, "top " + hexid(), [
                 [b, "reply", [
                     [a, "deeper", [
                         [b, "deepest", []]]]]]]],
              [b, "second top", []]]
    title = "About {album} " + hexid()
    data = {
        "posts": [{"author": a, "artists": [artist["name"]], "title": title,
                   "body": "On **{album}**.", "tags": ["demo"], "thread": thread}],
        "drafts": [{"author": b, "artists": [artist["name"]],
                    "title": "Draft " + hexid(), "body": "later", "tags": []}],
    }
    f = tmp_path / "community.json"
    f.write_text(json.dumps(data))

    assert run_script(f) == "2 new posts, 5 new comments"

    # the post names the artist and its album, by its author
    posts = requests.get(url("/api/v1/posts?artist_id=" + artist["id"])).json()["items"]
    assert len(posts) == 1, posts
    post = posts[0]
    assert post["title"] == title.replace("{album}", album["title"])
    assert post["body"] == "On **%s**." % album["title"]
    assert post["author"] == a and post["status"] == "published"
    assert post["artist_ids"] == [artist["id"]]

    # the thread in thread order, depth first
    items = requests.get(url("/api/v1/posts/%s/comments" % post["id"])).json()["items"]
    assert [c["depth"] for c in items] == list(depths(thread))
    assert [c["author"] for c in items] == [a, b, a, b, b]

    # idempotent: a second run finds everything there
    assert run_script(f) == "0 new posts, 0 new comments"
    assert len(requests.get(url("/api/v1/posts/%s/comments" % post["id"])).json()["items"]) == 5
