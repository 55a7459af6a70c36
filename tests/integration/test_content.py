"""Posts through the edge (CONTRACT.md, Content; openapi posts_*): CRUD,
drafts and publishing, who may see and change what, every field's rules,
the lists with their filters and cursors.  Events and the consumers
(artist replica, deleted users) are in test_content_events.py."""
import datetime
import threading
import urllib.parse
import uuid

import pytest
import requests

from conftest import assert_problem, url
from catalog_support import (assert_invalid, conforms, delete, get, mod,  # noqa: F401
                             new_artist, patch, post, tokens)
from content_support import (CALLERS, POSTS, account, fetch, headers_of,  # noqa: F401
                             list_posts, new_post, people, poll, post_body)


def stamp(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def path_of(p):
    return "%s/%s" % (POSTS, p["id"])


# ---- CRUD ----------------------------------------------------------------------------------

def test_create_a_draft_read_publish_delete(people):
    author = people["author"]
    r = post(POSTS, {"title": "First", "body": "# Hello\n\nworld"}, author["h"])
    assert r.status_code == 201, r.text
    p = conforms("Post", r.json())
    loc = r.headers["Location"]
    assert urllib.parse.urljoin(url("/"), loc) == url(path_of(p)), loc
    uuid.UUID(p["id"])
    # the defaults, and the author from the token
    assert (p["title"], p["body"], p["status"]) == ("First", "# Hello\n\nworld", "draft")
    assert p["artist_ids"] == [] and p["tags"] == [] and p["published_at"] is None
    assert p["author_id"] == author["id"] and p["author"] == author["username"]
    assert p["created_at"] == p["updated_at"]

    # a draft: its author sees it, anonymous does not
    assert fetch_as(loc, author) == p
    assert_problem(get(loc), 404)

    r = patch(loc, {"status": "published"}, author["h"])
    assert r.status_code == 200, r.text
    pub = conforms("Post", r.json())
    assert pub["status"] == "published" and pub["published_at"] is not None
    assert stamp(pub["published_at"]) == stamp(pub["updated_at"])
    assert stamp(pub["updated_at"]) > stamp(p["updated_at"])
    assert pub["created_at"] == p["created_at"]
    assert fetch(loc) == pub

    r = delete(loc, author["h"])
    assert r.status_code == 204 and r.content == b"", r.text
    assert_problem(get(loc), 404)
    assert_problem(delete(loc, author["h"]), 404)
    assert_problem(patch(loc, {"title": "x"}, author["h"]), 404)


def fetch_as(path, who):
    r = get(path, headers=headers_of(who))
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def test_create_published_with_every_field(people, mod):
    artists = [new_artist(mod)["id"] for _ in range(2)]
    wait_replica(artists, people["author"])
    body = post_body(title="t" * 200, body="b" * 50000, status="published",
                     artist_ids=[a.upper() for a in artists],
                     tags=["Post-Rock", "ICELAND"] + ["x%02d" % i + "y" * 47 for i in range(8)])
    r = post(POSTS, body, people["author"]["h"])
    assert r.status_code == 201, r.text
    p = conforms("Post", r.json())
    assert p["title"] == "t" * 200 and p["body"] == "b" * 50000
    assert p["artist_ids"] == artists                  # lower-cased, in order
    assert p["tags"][:2] == ["post-rock", "iceland"]   # lower-cased
    assert len(p["tags"]) == 10 and all(len(t) == 50 for t in p["tags"][2:])
    assert p["status"] == "published"
    assert p["published_at"] == p["created_at"] == p["updated_at"]
    assert fetch(path_of(p)) == p


def wait_replica(artist_ids, who):
    """Until the content worker's replica has these artists: a draft naming
    them is accepted (then deleted)."""
    def ok():
        r = post(POSTS, post_body(artist_ids=list(artist_ids)), who["h"])
        if r.status_code == 201:
            assert delete(path_of(r.json()), who["h"]).status_code == 204
            return True
        assert r.status_code == 422, r.text
        return False
    poll(ok, what="the artist replica to have %s" % artist_ids)


def test_published_at_is_set_once(people):
    h = people["author"]["h"]
    p = new_post(h, status="published")
    first = p["published_at"]
    for change in ({"status": "draft"}, {"title": "edited"}, {"status": "published"},
                   {"status": "published", "body": "again"}):
        r = patch(path_of(p), change, h)
        assert r.status_code == 200, r.text
        assert r.json()["published_at"] == first, change
    # a draft published later gets the time of that publish
    d = new_post(h)
    r = patch(path_of(d), {"title": "still a draft"}, h)
    assert r.json()["published_at"] is None
    r = patch(path_of(d), {"status": "published"}, h)
    assert stamp(r.json()["published_at"]) > stamp(d["created_at"])


def test_identity_fields_are_not_the_clients(people):
    """author_id and author come from the token: a body naming them, or
    anything else a client cannot write (a misspelt field), is refused by
    name on create and patch, and nothing is written."""
    h, other = people["author"]["h"], people["other"]
    title = "spoof " + uuid.uuid4().hex
    r = post(POSTS, post_body(title=title, author_id=other["id"], author="someone",
                              id=str(uuid.uuid4()), published_at="2001-01-01T00:00:00Z",
                              tag=["typo"]), h)
    assert_problem(r, 422)
    assert {e["field"] for e in r.json()["errors"]} == {
        "author_id", "author", "id", "published_at", "tag"}
    assert all(p["title"] != title
               for p in list_posts({"status": "draft"}, people["author"]["h"]))
    p = new_post(h)
    assert p["author_id"] == people["author"]["id"]
    assert p["author"] == people["author"]["username"]
    assert p["published_at"] is None
    r = patch(path_of(p), {"author_id": other["id"], "author": "x", "title": "y"}, h)
    assert_problem(r, 422)
    assert {e["field"] for e in r.json()["errors"]} == {"author_id", "author"}
    assert fetch_as(path_of(p), people["author"]) == p


def test_a_post_names_at_most_20_artists(people):
    ids = [str(uuid.uuid4()) for _ in range(21)]
    r = post(POSTS, post_body(artist_ids=ids), people["author"]["h"])
    assert_problem(r, 422)
    assert [e["field"] for e in r.json()["errors"]] == ["artist_ids"]


def test_paths_take_head_and_options_and_refuse_other_methods(people):
    p = new_post(people["author"]["h"], status="published")
    for path in (POSTS, path_of(p)):
        r = requests.head(url(path))
        assert r.status_code == 200 and r.content == b"", path
    for path, allow in ((POSTS, {"GET", "HEAD", "POST", "OPTIONS"}),
                        (path_of(p), {"GET", "HEAD", "PATCH", "DELETE", "OPTIONS"})):
        r = requests.options(url(path))
        assert r.status_code == 204
        assert {m.strip() for m in r.headers["Allow"].split(",")} == allow
        r = requests.put(url(path), json={}, headers=people["author"]["h"])
        assert_problem(r, 405)


NOT_UUIDS = ("abc", "0", "00000000-0000-0000-0000-00000000000",
             "g0000000-0000-0000-0000-000000000000", "00000000000000000000000000000000")


def test_unknown_ids_are_404(people):
    for who in ("author", "moderator", "admin"):
        h = people[who]["h"]
        for ident in [str(uuid.uuid4()), str(uuid.uuid4()).upper()] + list(NOT_UUIDS):
            path = "%s/%s" % (POSTS, ident)
            for r in (get(path, headers=h), patch(path, {"title": "x"}, h), delete(path, h)):
                conforms("Problem", assert_problem(r, 404))


# ---- who may see and change what ----------------------------------------------------------

# caller -> expected status, per (route, status of the post)
SEE = {
    "published": {"anonymous": 200, "author": 200, "other": 200, "moderator": 200, "admin": 200},
    "draft": {"anonymous": 404, "author": 200, "other": 404, "moderator": 200, "admin": 200},
}
CHANGE = {
    "published": {"anonymous": 401, "author": 200, "other": 403, "moderator": 200, "admin": 200},
    "draft": {"anonymous": 401, "author": 200, "other": 404, "moderator": 200, "admin": 200},
}
ERASE = {
    "published": {"anonymous": 401, "author": 204, "other": 403, "moderator": 204, "admin": 204},
    "draft": {"anonymous": 401, "author": 204, "other": 404, "moderator": 204, "admin": 204},
}


@pytest.mark.parametrize("status", ["published", "draft"])
@pytest.mark.parametrize("caller", CALLERS)
def test_who_may_read(people, status, caller):
    p = new_post(people["author"]["h"], status=status)
    r = get(path_of(p), headers=headers_of(people[caller]))
    assert r.status_code == SEE[status][caller], (r.status_code, r.text)
    if r.status_code == 200:
        assert r.json() == p
    else:
        body = assert_problem(r, 404)
        assert "draft" not in body["detail"] and p["title"] not in r.text


@pytest.mark.parametrize("status", ["published", "draft"])
@pytest.mark.parametrize("caller", CALLERS)
def test_who_may_patch(people, status, caller):
    p = new_post(people["author"]["h"], status=status)
    r = patch(path_of(p), {"title": "changed by " + caller}, headers_of(people[caller]))
    want = CHANGE[status][caller]
    if want == 200:
        assert r.status_code == 200, r.text
        changed = r.json()
        assert changed["title"] == "changed by " + caller
        # a moderator's edit keeps the author
        assert changed["author_id"] == people["author"]["id"]
        assert changed["author"] == people["author"]["username"]
    else:
        assert_problem(r, want)
        if want == 401:
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert fetch_as(path_of(p), people["author"]) == p, "a refused patch changed it"


@pytest.mark.parametrize("status", ["published", "draft"])
@pytest.mark.parametrize("caller", CALLERS)
def test_who_may_delete(people, status, caller):
    p = new_post(people["author"]["h"], status=status)
    r = delete(path_of(p), headers_of(people[caller]))
    want = ERASE[status][caller]
    if want == 204:
        assert r.status_code == 204, r.text
        assert_problem(get(path_of(p), headers=people["author"]["h"]), 404)
    else:
        assert_problem(r, want)
        assert fetch_as(path_of(p), people["author"]) == p, "a refused delete removed it"


@pytest.mark.parametrize("caller", CALLERS)
def test_who_may_create(people, caller):
    r = post(POSTS, post_body(), headers_of(people[caller]))
    if caller == "anonymous":
        assert_problem(r, 401)
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    else:
        assert r.status_code == 201, r.text
        assert r.json()["author_id"] == people[caller]["id"]


def test_a_refused_write_with_a_bad_body_is_refused_for_the_body_or_the_caller(people):
    """Credentials before the body: anonymous is 401 whatever the body."""
    p = new_post(people["author"]["h"], status="published")
    assert_problem(patch(path_of(p), {"title": ""}), 401)
    assert_problem(post(POSTS, {"title": ""}), 401)


# ---- every field's rules ----------------------------------------------------------------------

BAD = [
    ({"title": ""}, "title"), ({"title": "t" * 201}, "title"), ({"title": "   "}, "title"),
    ({"title": 5}, "title"), ({"title": None}, "title"), ({"title": ["x"]}, "title"),
    ({"body": ""}, "body"), ({"body": "b" * 50001}, "body"), ({"body": "\n\t "}, "body"),
    ({"body": {}}, "body"), ({"body": None}, "body"), ({"body": "a\u0000b"}, "body"),
    ({"status": "archived"}, "status"), ({"status": "Published"}, "status"),
    ({"status": None}, "status"), ({"status": 1}, "status"),
    ({"artist_ids": "x"}, "artist_ids"), ({"artist_ids": ["not-a-uuid"]}, "artist_ids"),
    ({"artist_ids": [1]}, "artist_ids"), ({"artist_ids": None}, "artist_ids"),
    ({"artist_ids": [str(uuid.uuid4())]}, "artist_ids"),
    ({"tags": "rock"}, "tags"), ({"tags": ["x"] * 1 + ["t%d" % i for i in range(10)]}, "tags"),
    ({"tags": [""]}, "tags"), ({"tags": ["t" * 51]}, "tags"), ({"tags": ["Rock", "rock"]}, "tags"),
    ({"tags": [1]}, "tags"), ({"tags": None}, "tags"), ({"tags": [None]}, "tags"),
]


@pytest.mark.parametrize("change,field", BAD)
def test_bad_values_are_422_on_create_and_patch(people, change, field):
    h = people["author"]["h"]
    before = list_posts({"status": "draft"}, h)
    assert_invalid(post(POSTS, post_body(**change), h), field)
    p = new_post(h)
    assert_invalid(patch(path_of(p), change, h), field)
    assert fetch_as(path_of(p), people["author"]) == p
    assert [x["id"] for x in list_posts({"status": "draft"}, h)] == \
        [p["id"]] + [x["id"] for x in before]


def test_missing_fields_and_empty_patches_are_422(people):
    h = people["author"]["h"]
    assert_invalid(post(POSTS, {"body": "b"}, h), "title")
    assert_invalid(post(POSTS, {"title": "t"}, h), "body")
    assert_invalid(post(POSTS, {}, h), "title", "body")
    p = new_post(h)
    assert_problem(patch(path_of(p), {}, h), 422)
    assert_problem(patch(path_of(p), {"unknown": 1}, h), 422)


def test_every_bad_field_is_named_at_once(people):
    r = post(POSTS, {"title": "", "body": 1, "status": "x", "artist_ids": ["y"],
                     "tags": ["a", "A"]}, people["author"]["h"])
    body = assert_invalid(r, "title", "body", "status", "artist_ids", "tags")
    assert {"artist_ids[0]", "tags[1]"} <= {e["field"] for e in body["errors"]}


def test_unknown_artist_ids_are_named(people, mod):
    known = new_artist(mod)["id"]
    wait_replica([known], people["author"])
    ghosts = [str(uuid.uuid4()), str(uuid.uuid4())]
    r = post(POSTS, post_body(artist_ids=[ghosts[0], known, ghosts[1]]), people["author"]["h"])
    body = assert_invalid(r, "artist_ids")
    errors = {e["field"]: e["message"] for e in body["errors"]}
    assert set(errors) == {"artist_ids[0]", "artist_ids[2]"}, body
    assert ghosts[0] in errors["artist_ids[0]"] and ghosts[1] in errors["artist_ids[2]"]
    p = new_post(people["author"]["h"], artist_ids=[known])
    body = assert_invalid(patch(path_of(p), {"artist_ids": [known, ghosts[1]]},
                                people["author"]["h"]), "artist_ids")
    assert [e["field"] for e in body["errors"]] == ["artist_ids[1]"]


def test_malformed_bodies(people):
    h = dict(people["author"]["h"])
    r = requests.post(url(POSTS), data="{", headers=dict(h, **{"Content-Type": "application/json"}))
    assert_problem(r, 400)
    r = requests.post(url(POSTS), data="title=x", headers=dict(
        h, **{"Content-Type": "application/x-www-form-urlencoded"}))
    assert_problem(r, 415)
    r = requests.post(url(POSTS), data="[]", headers=dict(h, **{"Content-Type": "application/json"}))
    assert_problem(r, 400)
    # the largest valid body, every character escaped, fits (1m at the edge)
    big = '{"title":"%s","body":"%s"}' % ("\\ud83c\\udfb5" * 200, "\\ud83c\\udfb5" * 50000)
    r = requests.post(url(POSTS), data=big, headers=dict(h, **{"Content-Type": "application/json"}))
    assert r.status_code == 201, r.text[:300]
    assert r.json()["body"] == "\U0001F3B5" * 50000
    r = requests.post(url(POSTS), data=big + " " * (1 << 20),
                      headers=dict(h, **{"Content-Type": "application/json"}))
    assert_problem(r, 413)


# ---- lists ----------------------------------------------------------------------------------------

def test_list_is_published_only_newest_first(people):
    h = people["author"]["h"]
    tag = "t" + uuid.uuid4().hex[:12]
    made = [new_post(h, status=s, tags=[tag]) for s in
            ("published", "draft", "published", "published", "draft")]
    # a draft published later sorts by that publish
    r = patch(path_of(made[1]), {"status": "published"}, h)
    assert r.status_code == 200
    made[1] = r.json()
    want = [made[1], made[3], made[2], made[0]]
    for limit in (1, 2, 100):
        assert list_posts({"tag": tag}, limit=limit) == want
        # whoever asks: the list is the published posts
        assert list_posts({"tag": tag}, h, limit=limit) == want
    page = get(POSTS, params={"tag": tag}).json()
    conforms("PostList", page)
    # the whole list, newest first, without drafts
    top = get(POSTS, params={"limit": 100}).json()["items"]
    assert all(p["status"] == "published" for p in top)
    keys = [(p["published_at"], p["id"]) for p in top]
    assert keys == sorted(keys, reverse=True)


def test_paging_has_no_duplicates_or_gaps_while_posts_are_added(people):
    h = people["author"]["h"]
    tag = "page" + uuid.uuid4().hex[:10]
    before = [new_post(h, status="published", tags=[tag]) for _ in range(9)]
    seen, params = [], {"tag": tag, "limit": 2}
    added = []
    while True:
        r = get(POSTS, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["items"]
        # posts published meanwhile are newer than every page still to come
        added.append(new_post(h, status="published", tags=[tag]))
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    ids = [p["id"] for p in seen]
    assert len(ids) == len(set(ids)), "a post repeated"
    assert ids == [p["id"] for p in reversed(before)]
    assert [p["id"] for p in list_posts({"tag": tag})] == \
        [p["id"] for p in reversed(before + added)]


def test_filters(people, mod):
    a, b = people["author"], people["other"]
    artists = [new_artist(mod)["id"] for _ in range(2)]
    wait_replica(artists, a)
    tag = "f" + uuid.uuid4().hex[:10]
    p1 = new_post(a["h"], status="published", artist_ids=[artists[0]], tags=[tag, "x"])
    p2 = new_post(b["h"], status="published", artist_ids=artists, tags=[tag])
    p3 = new_post(a["h"], status="published", artist_ids=[artists[1]], tags=["y"])
    d1 = new_post(a["h"], artist_ids=[artists[0]], tags=[tag])
    ids = lambda ps: [p["id"] for p in ps]  # noqa: E731

    assert ids(list_posts({"artist_id": artists[0]})) == ids([p2, p1])
    assert ids(list_posts({"artist_id": artists[1].upper()})) == ids([p3, p2])
    assert ids(list_posts({"tag": tag})) == ids([p2, p1])
    assert ids(list_posts({"tag": tag.upper()})) == ids([p2, p1])     # lower-cased
    assert ids(list_posts({"author_id": b["id"], "tag": tag})) == ids([p2])
    assert ids(list_posts({"artist_id": artists[0], "author_id": a["id"]})) == ids([p1])
    assert ids(list_posts({"artist_id": artists[1], "tag": "y"})) == ids([p3])
    assert ids(list_posts({"artist_id": artists[0], "tag": "y"})) == []
    assert ids(list_posts({"artist_id": str(uuid.uuid4())})) == []
    assert ids(list_posts({"status": "published", "tag": tag})) == ids([p2, p1])
    mine = list_posts({"author_id": a["id"]})
    assert {p1["id"], p3["id"]} <= set(ids(mine)) and d1["id"] not in ids(mine)
    assert all(p["author_id"] == a["id"] and p["status"] == "published" for p in mine)
    # a post that changes its artists or tags moves between the lists
    r = patch(path_of(p1), {"artist_ids": [artists[1]], "tags": ["z"]}, a["h"])
    assert r.status_code == 200, r.text
    assert ids(list_posts({"artist_id": artists[0]})) == ids([p2])
    assert ids(list_posts({"artist_id": artists[1]})) == ids([p3, p2, p1])
    assert ids(list_posts({"tag": tag})) == ids([p2])
    # one that goes back to draft leaves them
    assert patch(path_of(p2), {"status": "draft"}, b["h"]).status_code == 200
    assert ids(list_posts({"artist_id": artists[1]})) == ids([p3, p1])
    assert p2["id"] not in ids(list_posts())


def test_drafts_are_listed_to_their_author_only(people):
    a, b = account(), people["other"]
    d = [new_post(a["h"]) for _ in range(3)]
    new_post(a["h"], status="published")
    new_post(b["h"])
    r = patch(path_of(d[0]), {"title": "edited later"}, a["h"])
    assert r.status_code == 200
    d[0] = r.json()
    # newest first by creation (an edit does not move a draft)
    for limit in (1, 2, 100):
        assert list_posts({"status": "draft"}, a["h"], limit=limit) == list(reversed(d))
    assert [p["id"] for p in list_posts({"status": "draft", "author_id": b["id"]},
                                        a["h"])] == []
    theirs = list_posts({"status": "draft"}, b["h"])
    assert theirs and all(p["author_id"] == b["id"] for p in theirs)
    # even a moderator lists only their own drafts
    assert not any(p["author_id"] == a["id"]
                   for p in list_posts({"status": "draft"}, people["moderator"]["h"]))
    r = get(POSTS, params={"status": "draft"})
    assert_problem(r, 401)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    # a cursor of my drafts is not one of yours
    r = get(POSTS, params={"status": "draft", "limit": 1}, headers=a["h"])
    cursor = r.json()["next_cursor"]
    assert cursor
    assert_problem(get(POSTS, params={"status": "draft", "limit": 1, "cursor": cursor},
                       headers=b["h"]), 400)
    assert get(POSTS, params={"status": "draft", "limit": 1, "cursor": cursor},
               headers=a["h"]).status_code == 200


@pytest.mark.parametrize("params,status", [
    ({"artist_id": "abc"}, 422), ({"author_id": "1"}, 422), ({"tag": ""}, 422),
    ({"tag": "t" * 51}, 422), ({"status": "Draft"}, 422), ({"status": "x"}, 422),
    ({"limit": "0"}, 422), ({"limit": "101"}, 422), ({"limit": "x"}, 422),
    ({"cursor": "abc"}, 400), ({"cursor": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, 400),
])
def test_bad_list_parameters(params, status):
    assert_problem(get(POSTS, params=params), status)


def test_a_cursor_belongs_to_its_filters(people):
    h = people["author"]["h"]
    tag = "c" + uuid.uuid4().hex[:10]
    for _ in range(3):
        new_post(h, status="published", tags=[tag])
    cursor = get(POSTS, params={"tag": tag, "limit": 1}).json()["next_cursor"]
    assert cursor
    assert_problem(get(POSTS, params={"tag": tag + "x", "limit": 1, "cursor": cursor}), 400)
    assert_problem(get(POSTS, params={"limit": 1, "cursor": cursor}), 400)
    assert get(POSTS, params={"tag": tag, "limit": 1, "cursor": cursor}).status_code == 200


def test_concurrent_publishes_of_one_draft_publish_once(people):
    """Several clients publish the same draft at once: every patch is 200
    and they all answer the same published_at."""
    h = people["author"]["h"]
    for _ in range(3):
        d = new_post(h)
        results, gate = [None] * 4, threading.Barrier(4)

        def run(i):
            gate.wait()
            results[i] = patch(path_of(d), {"status": "published"}, h)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [r.status_code for r in results] == [200] * 4, [r.text for r in results]
        assert len({r.json()["published_at"] for r in results}) == 1
