"""The views through the edge on real data (CONTRACT.md, Views; openapi
views_*; conf/views.conf): the post view with its artists and comments, a
draft's view, the artist view with its albums and posts, the home view;
the main part's 404; identity reaching the parts (a draft's view); ETag
and 304; HEAD; and the parts' internal routes, which no client reaches.
The views when parts fail, and what reaches a part, are
test_views_faults.py.

Anonymous readers may get parts from the edge's cache (a few seconds:
conf/views.conf), so a test comparing a view with what the workers answer
now reads the view as a signed-in caller, whose parts are never cached,
or before anyone read it anonymously."""
import uuid

import pytest
import requests

from conftest import assert_problem, url, wait_until
from catalog_support import conforms, mod, new_album, new_artist, tokens  # noqa: F401
from content_support import POSTS, people, post_body  # noqa: F401
from catalog_support import fetch, post
from views_support import assert_complete, assert_partial, assert_view

POST_VIEW = "/api/v1/views/post/%s"
ARTIST_VIEW = "/api/v1/views/artist/%s"
HOME_VIEW = "/api/v1/views/home"

NOT_UUIDS = ("abc", "0", "00000000-0000-0000-0000-00000000000",
             "{00000000-0000-0000-0000-000000000000}", "..", "..%2f..%2finternal%2fartists",
             "x%3Fids%3D1", "%2e%2e", "a%20b")


def poll(pred, what):
    return wait_until(pred, timeout=60.0, what=what)


def as_(who):
    return who["h"] if who else {}


def view(path, who=None, **kw):
    return requests.get(url(path), headers=dict(as_(who), **kw.pop("headers", {})), **kw)


def published_post(who, artist_ids=(), **kw):
    """A published post naming these artists, once the content worker's
    replica of the catalog has them (422 until then)."""
    body = post_body(status="published", artist_ids=list(artist_ids), **kw)

    def make():
        r = post(POSTS, body, as_(who))
        assert r.status_code in (201, 422), r.text
        return r.json() if r.status_code == 201 else None
    return poll(make, "the content worker's replica to have %s" % (artist_ids,))


def comment(who, post_id, text, parent_id=None):
    """A comment, once the comments worker's replica has the post (404
    until then)."""
    body = {"body": text}
    if parent_id:
        body["parent_id"] = parent_id

    def make():
        r = requests.post(url("/api/v1/posts/%s/comments" % post_id), json=body, headers=as_(who))
        assert r.status_code in (201, 404), r.text
        return r.json() if r.status_code == 201 else None
    return poll(make, "the comments worker's replica to have post %s" % post_id)


@pytest.fixture(scope="module")
def world(people, mod):
    """Two artists (the second with two albums), a published post naming
    them in reverse order with a thread of three comments, and a draft."""
    a1, a2 = new_artist(mod), new_artist(mod)
    albums = [new_album(mod, a2["id"], release_date="2001-01-0%d" % i) for i in (1, 2)]
    p = published_post(people["author"], [a2["id"], a1["id"]])
    c1 = comment(people["other"], p["id"], "first")
    c2 = comment(people["author"], p["id"], "a reply", c1["id"])
    c3 = comment(people["other"], p["id"], "second")
    draft = requests.post(url(POSTS), json=post_body(artist_ids=[a1["id"]]),
                          headers=people["author"]["h"])
    assert draft.status_code == 201, draft.text
    return {"artists": [a1, a2], "albums": albums, "post": p, "comments": [c1, c2, c3],
            "draft": draft.json()}


# ---- the post view -----------------------------------------------------------------------

def test_post_view(world, people):
    p = world["post"]
    for who in (None, people["other"]):
        r = view(POST_VIEW % p["id"], who)
        body = assert_complete(r)
        conforms("PostView", body)
        assert list(body) == ["post", "artists", "comments"]
        assert body["post"] == fetch("%s/%s" % (POSTS, p["id"]))
        # the artists in the order of the post's artist_ids, as the catalog has them
        assert [a["id"] for a in body["artists"]] == p["artist_ids"]
        assert body["artists"] == [fetch("/api/v1/artists/%s" % a) for a in p["artist_ids"]]
        # the first page of the thread, depth first
        assert body["comments"] == fetch("/api/v1/posts/%s/comments" % p["id"])
        assert [c["id"] for c in body["comments"]["items"]] == \
            [c["id"] for c in world["comments"]]
        assert body["comments"]["next_cursor"] is None


def test_post_view_of_a_post_without_artists_or_comments(people):
    p = published_post(people["author"])
    # the comments worker learns of the post from its event: until then the
    # comments part is a 404, and the view says so
    r = poll(lambda: (lambda r: r if "errors" not in r.json() else None)(
        view(POST_VIEW % p["id"], people["author"])), "the comments worker to have the post")
    body = assert_complete(r)
    assert body == {"post": p, "artists": [], "comments": {"items": [], "next_cursor": None}}


def test_post_view_of_an_artist_deleted_since(people, mod):
    gone, kept = new_artist(mod), new_artist(mod)
    p = published_post(people["author"], [gone["id"], kept["id"]])
    assert requests.delete(url("/api/v1/artists/%s" % gone["id"]), headers=mod).status_code == 204
    # the catalog skips an id it no longer has (the post may still name it
    # until the content worker hears of the deletion)
    body = assert_view(view(POST_VIEW % p["id"], people["other"]))
    assert [a["id"] for a in body["artists"]] == [kept["id"]]


def test_a_drafts_view(world, people):
    """Identity reaches the parts: the post part answers the draft to its
    author, and the artists part is asked for with its artist_ids."""
    d = world["draft"]
    path = POST_VIEW % d["id"]
    # its author and moderators see it: a draft has no comments to list
    for who in (people["author"], people["moderator"]):
        body = assert_partial(view(path, who), [("comments", 404)])
        assert body["post"] == d and body["post"]["status"] == "draft"
        assert body["artists"] == [fetch("/api/v1/artists/%s" % world["artists"][0]["id"])]
    # nobody else, and no cached part of the author's view reaches them
    for who in (None, people["other"], None):
        body = assert_problem(view(path, who), 404)
        assert "post" not in body
    # the other way round too: an anonymous 404 first, then the author
    fresh = requests.post(url(POSTS), json=post_body(), headers=people["author"]["h"]).json()
    assert_problem(view(POST_VIEW % fresh["id"]), 404)
    assert assert_partial(view(POST_VIEW % fresh["id"], people["author"]),
                          [("comments", 404)])["post"] == fresh


@pytest.mark.parametrize("kind", ["post", "artist"])
def test_the_main_parts_404_is_the_views(kind):
    path = (POST_VIEW if kind == "post" else ARTIST_VIEW) % uuid.uuid4()
    body = assert_problem(view(path), 404)
    assert body["detail"] == "no such %s" % kind, body
    r = requests.head(url(path))
    assert r.status_code == 404 and r.content == b""


@pytest.mark.parametrize("kind", ["post", "artist"])
@pytest.mark.parametrize("bad", NOT_UUIDS)
def test_ids_that_are_not_uuids_are_404(kind, bad, world):
    path = (POST_VIEW if kind == "post" else ARTIST_VIEW) % bad
    r = requests.get(url(path))
    assert r.status_code == 404, (path, r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    for thing in world["artists"]:
        assert thing["id"] not in r.text


def test_an_invalid_token_is_401_before_any_part():
    for path in (POST_VIEW % uuid.uuid4(), ARTIST_VIEW % uuid.uuid4(), HOME_VIEW):
        r = view(path, headers={"Authorization": "Bearer not.a.token"})
        assert_problem(r, 401)


# ---- the artist view ---------------------------------------------------------------------

def test_artist_view(world, people):
    a1, a2 = world["artists"]
    extra = published_post(people["other"], [a2["id"]])
    r = view(ARTIST_VIEW % a2["id"], people["other"])
    body = assert_complete(r)
    conforms("ArtistView", body)
    assert list(body) == ["artist", "albums", "posts"]
    assert body["artist"] == fetch("/api/v1/artists/%s" % a2["id"])
    assert body["albums"] == fetch("/api/v1/artists/%s/albums?limit=100" % a2["id"])["items"]
    assert {a["id"] for a in body["albums"]} == {a["id"] for a in world["albums"]}
    # its published posts, newest first; never the draft naming the other one
    assert body["posts"] == fetch("/api/v1/posts?artist_id=%s&limit=20" % a2["id"])["items"]
    assert [p["id"] for p in body["posts"]] == [extra["id"], world["post"]["id"]]
    body = assert_complete(view(ARTIST_VIEW % a1["id"], people["author"]))
    assert body["albums"] == [] and [p["id"] for p in body["posts"]] == [world["post"]["id"]]


def test_artist_view_anonymous(world):
    a2 = world["artists"][1]
    body = assert_complete(view(ARTIST_VIEW % a2["id"]))
    conforms("ArtistView", body)
    assert body["artist"]["id"] == a2["id"] and len(body["albums"]) == 2


# ---- the home view -------------------------------------------------------------------------

def test_home_view(world, people):
    r = view(HOME_VIEW, people["other"])
    body = assert_complete(r)
    conforms("HomeView", body)
    assert list(body) == ["latest_posts", "artists"]
    assert body["latest_posts"] == fetch("/api/v1/posts?limit=10")["items"]
    assert body["artists"] == fetch("/api/v1/artists?limit=20")["items"]
    assert all(p["status"] == "published" for p in body["latest_posts"])
    # the author's drafts are not among them
    drafts = {world["draft"]["id"]}
    assert not drafts & {p["id"] for p in assert_view(view(HOME_VIEW, people["author"]))[
        "latest_posts"]}
    conforms("HomeView", assert_complete(view(HOME_VIEW)))


# ---- ETag, 304, HEAD ----------------------------------------------------------------------

def test_etag_and_if_none_match(world, people):
    path = POST_VIEW % world["post"]["id"]
    who = people["other"]
    r = view(path, who)
    assert_complete(r)
    etag = r.headers["ETag"]
    assert view(path, who).headers["ETag"] == etag          # the same body, the same tag
    for inm in (etag, "W/" + etag, '"nope", ' + etag, etag + ', "nope"', "*",
                '"a",W/' + etag):
        again = view(path, who, headers={"If-None-Match": inm})
        assert again.status_code == 304, (inm, again.status_code)
        assert again.content == b"" and again.headers.get("ETag") == etag, again.headers
        assert again.headers.get("X-Request-Id")
    for inm in ('"nope"', etag[:-2] + 'x"', etag.strip('"'), "", "W/", "w/" + etag):
        again = view(path, who, headers={"If-None-Match": inm})
        assert again.status_code == 200 and again.headers["ETag"] == etag, (inm, again.status_code)
        assert again.content == r.content
    # the view changes: another tag, and the old one is a 200
    comment(people["author"], world["post"]["id"], "changes the view")
    changed = view(path, who, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    world["comments"] = world["comments"] + [assert_complete(changed)["comments"]["items"][-1]]


def test_a_malformed_if_none_match_matches_nothing(world, people):
    # RFC 9110 13.1.2: entity-tag list; the header's documentation
    # (encore_agg.h): "A malformed list matches nothing"
    path = POST_VIEW % world["post"]["id"]
    etag = view(path, people["other"]).headers["ETag"]
    for inm in (etag + "x", etag + " x", etag + ";", etag + ' "b"'):
        again = view(path, people["other"], headers={"If-None-Match": inm})
        assert again.status_code == 200, (inm, again.status_code)


def test_if_match_and_the_date_conditionals(world, people):
    # a view has no modification date: If-Unmodified-Since and
    # If-Modified-Since are ignored (RFC 9110 13.1.3-4); If-Match is
    # answered against the view's own ETag
    path = POST_VIEW % world["post"]["id"]
    who = people["other"]
    etag = view(path, who).headers["ETag"]
    for name, value in (("If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"),
                        ("If-Unmodified-Since", "Fri, 31 Dec 2100 00:00:00 GMT"),
                        ("If-Modified-Since", "Fri, 31 Dec 2100 00:00:00 GMT"),
                        ("If-Match", etag), ("If-Match", '"nope", ' + etag),
                        ("If-Match", "*")):
        r = view(path, who, headers={name: value})
        assert r.status_code == 200 and r.headers["ETag"] == etag, (name, value, r.status_code)
    r = view(path, who, headers={"If-Match": '"nope"'})
    assert_problem(r, 412)


def test_pipelined_views(world):
    # several views on one connection, sent before any answer: each
    # answered in order, the connection kept
    import socket
    from urllib.parse import urlsplit
    edge = urlsplit(url("/"))
    host, port = edge.hostname, edge.port
    paths = [HOME_VIEW, POST_VIEW % world["post"]["id"], HOME_VIEW,
             POST_VIEW % uuid.uuid4()]
    raw = "".join("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % p for p in paths)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(raw.encode())
        f = s.makefile("rb")
        statuses = []
        for _ in paths:
            status = int(f.readline().split()[1])
            length = None
            while True:
                line = f.readline().strip()
                if not line:
                    break
                k, v = line.decode().split(":", 1)
                if k.lower() == "content-length":
                    length = int(v)
            assert length is not None
            body = f.read(length)
            assert len(body) == length
            statuses.append(status)
    assert statuses == [200, 200, 200, 404], statuses


def test_head(world, people):
    for path in (POST_VIEW % world["post"]["id"], ARTIST_VIEW % world["artists"][1]["id"],
                 HOME_VIEW):
        got = view(path, people["other"])
        head = requests.head(url(path), headers=people["other"]["h"])
        assert_view(head)
        assert head.headers["ETag"] == got.headers["ETag"]
        assert "Content-Length" not in head.headers or \
            int(head.headers["Content-Length"]) == len(got.content)
        inm = requests.head(url(path), headers=dict(people["other"]["h"],
                                                    **{"If-None-Match": got.headers["ETag"]}))
        assert inm.status_code == 304


def test_views_take_get_head_and_options_only(world):
    path = POST_VIEW % world["post"]["id"]
    r = requests.options(url(path))
    assert r.status_code == 204 and r.headers["Allow"] == "GET, HEAD, OPTIONS", r.headers
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = requests.request(method, url(path), json={})
        assert_problem(r, 405)
        assert r.headers["Allow"] == "GET, HEAD, OPTIONS"


# ---- what no client reaches -------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/_part/catalog/api/v1/artists", "/_part/catalog/internal/artists?ids=%s" % uuid.UUID(int=1),
    "/_part/content/api/v1/posts", "/_part/comments/api/v1/posts/%s/comments" % uuid.UUID(int=1),
    "/_part/catalog/", "/_part/content/healthz", "/_part/auth/api/v1/users",
])
def test_part_locations_are_internal(path, world):
    r = requests.get(url(path))
    # an internal location answers 404 (problem+json); a path under no
    # part location is the web UI's: never a worker's answer
    assert r.status_code in (404, 200), (path, r.status_code)
    if r.status_code == 404:
        assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    else:
        assert r.headers["Content-Type"].startswith("text/html"), r.headers
    assert "items" not in r.text and "next_cursor" not in r.text, r.text[:300]
    assert world["post"]["id"] not in r.text


def test_internal_worker_routes_are_the_web_ui(world):
    ids = ",".join(a["id"] for a in world["artists"])
    for path in ("/internal/artists?ids=" + ids, "/internal/verify", "/internal/",
                 "/api/v1/../../internal/artists?ids=" + ids):
        r = requests.get(url(path))
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), \
            (path, r.status_code, r.headers)
        assert world["artists"][0]["id"] not in r.text
