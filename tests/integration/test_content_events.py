"""The content worker's events on the real broker (CONTRACT.md, Events),
and the events it consumes: encore.content.posts carries each post's
created / published / updated / deleted with the post as the API answers
it; the artist replica follows encore.catalog.artists (a deleted artist is
unlinked from its posts, each publishing encore.post.updated); a deleted
user's posts show "[deleted]".  Eventual consistency is polled for, with
a bound, never timed."""
import threading
import uuid

import requests

from conftest import assert_problem, url
from catalog_support import bearer, delete, get, mod, new_artist, patch, post, tokens  # noqa: F401
from content_support import (POSTS, account, check_record, fetch, new_post,  # noqa: F401
                             people, poll, post_body, post_events, types_of)
from test_content import fetch_as, path_of, wait_replica


def test_a_posts_life_publishes_its_events(people):
    h = people["author"]["h"]
    r = post(POSTS, post_body(tags=["a"]), h)
    assert r.status_code == 201
    draft, rid_created = r.json(), r.headers["X-Request-Id"]
    r = patch(path_of(draft), {"status": "published"}, h)
    pub, rid_published = r.json(), r.headers["X-Request-Id"]
    r = patch(path_of(draft), {"title": "edited"}, h)
    edited, rid_edited = r.json(), r.headers["X-Request-Id"]
    r = delete(path_of(draft), h)
    assert r.status_code == 204
    rid_deleted = r.headers["X-Request-Id"]

    k = draft["id"]
    msgs = post_events({(k, "encore.post.deleted")})
    assert types_of(msgs, k) == ["encore.post.created", "encore.post.updated",
                                 "encore.post.published", "encore.post.updated",
                                 "encore.post.deleted"]
    by_type = {}
    for m in msgs:
        check_record(m)
        by_type.setdefault(m["headers"]["ce_type"], []).append(m)
    assert by_type["encore.post.created"][0]["value"] == draft
    check_record(by_type["encore.post.created"][0], rid_created)
    # the publish: its update, then published, both the published post
    assert by_type["encore.post.updated"][0]["value"] == pub
    assert by_type["encore.post.published"][0]["value"] == pub
    check_record(by_type["encore.post.published"][0], rid_published)
    assert pub["status"] == "published" and pub["published_at"]
    assert by_type["encore.post.updated"][-1]["value"] == edited
    check_record(by_type["encore.post.updated"][-1], rid_edited)
    assert by_type["encore.post.deleted"][0]["value"] == {"id": k}
    check_record(by_type["encore.post.deleted"][0], rid_deleted)


def test_create_published_publishes_created_then_published(people):
    p = new_post(people["author"]["h"], status="published")
    msgs = post_events({(p["id"], "encore.post.published")})
    assert types_of(msgs, p["id"]) == ["encore.post.created", "encore.post.published"]
    assert [m["value"] for m in msgs] == [p, p]
    # a later publish of the same post is an update, not a second publish
    h = people["author"]["h"]
    assert patch(path_of(p), {"status": "draft"}, h).status_code == 200
    assert patch(path_of(p), {"status": "published"}, h).status_code == 200
    r = patch(path_of(p), {"title": "marker"}, h)
    assert r.status_code == 200
    msgs = post_events({(p["id"], "encore.post.updated")},
                       also=lambda ms: any(m["value"].get("title") == "marker" for m in ms))
    assert types_of(msgs, p["id"]) == ["encore.post.created", "encore.post.published",
                                       "encore.post.updated", "encore.post.updated",
                                       "encore.post.updated"]
    assert msgs[-1]["value"] == r.json()


def test_refused_writes_publish_nothing(people):
    h = people["author"]["h"]
    p = new_post(h, status="published")
    refused = []
    for r, status in ((patch(path_of(p), {"title": ""}, h), 422),
                      (patch(path_of(p), {"artist_ids": [str(uuid.uuid4())]}, h), 422),
                      (patch(path_of(p), {"title": "x"}, people["other"]["h"]), 403),
                      (delete(path_of(p), people["other"]["h"]), 403),
                      (patch(path_of(p), {"title": "x"}), 401)):
        assert_problem(r, status)
        refused.append(r.headers["X-Request-Id"])
    r = patch(path_of(p), {"title": "accepted"}, h)
    assert r.status_code == 200
    msgs = post_events({(p["id"], "encore.post.updated")})
    assert types_of(msgs, p["id"]) == ["encore.post.created", "encore.post.published",
                                       "encore.post.updated"]
    assert not {m["headers"].get("ce_encorerequestid") for m in msgs} & set(refused)


# ---- the artist replica ----------------------------------------------------------------------

def test_artists_reach_the_replica_and_deleted_ones_leave_their_posts(people, mod):
    h = people["author"]["h"]
    artist = new_artist(mod)
    keep = new_artist(mod)
    # created in the catalog: usable in artist_ids once the event arrived
    wait_replica([artist["id"], keep["id"]], people["author"])
    # an update keeps it usable
    assert patch("/api/v1/artists/" + artist["id"], {"bio": "new"}, mod).status_code == 200
    pub = new_post(h, status="published", artist_ids=[artist["id"], keep["id"]])
    draft = new_post(h, artist_ids=[artist["id"]])
    other = new_post(h, status="published", artist_ids=[keep["id"]])

    assert delete("/api/v1/artists/" + artist["id"], mod).status_code == 204
    poll(lambda: fetch(path_of(pub))["artist_ids"] == [keep["id"]],
         what="the deleted artist to leave the post")
    poll(lambda: fetch_as(path_of(draft), people["author"])["artist_ids"] == [],
         what="the deleted artist to leave the draft")
    assert fetch(path_of(other)) == other
    assert [p["id"] for p in requests.get(url(POSTS), params={
        "artist_id": artist["id"]}).json()["items"]] == []
    # each changed post published its update, with the artist gone
    msgs = post_events({(pub["id"], "encore.post.updated"), (draft["id"], "encore.post.updated")})
    for p in (pub, draft):
        ups = [m for m in msgs if m["key"] == p["id"]
               and m["headers"]["ce_type"] == "encore.post.updated"]
        assert len({m["headers"]["ce_id"] for m in ups}) == 1, ups
        assert artist["id"] not in ups[0]["value"]["artist_ids"]
        check_record(ups[0])
    assert fetch(path_of(pub)) == [m for m in msgs if m["key"] == pub["id"]][-1]["value"]
    assert types_of(post_events({(other["id"], "encore.post.published")}), other["id"]) == \
        ["encore.post.created", "encore.post.published"]
    # and it can no longer be named
    r = post(POSTS, post_body(artist_ids=[artist["id"]]), h)
    assert_problem(r, 422)


def test_posts_written_while_their_artist_is_deleted_are_unlinked(people, mod):
    """Posts naming an artist are written while the artist is deleted: each
    write is 201 (it came first: the consumer unlinks it) or 422 (the
    deletion came first); no post keeps the artist."""
    h = people["author"]["h"]
    for _ in range(3):
        artist = new_artist(mod)
        wait_replica([artist["id"]], people["author"])
        results, stop = [], threading.Event()

        def write():
            s = requests.Session()
            while not stop.is_set():
                results.append(s.post(url(POSTS), json=post_body(
                    status="published", artist_ids=[artist["id"]]), headers=h))

        threads = [threading.Thread(target=write) for _ in range(3)]
        for t in threads:
            t.start()
        poll(lambda: any(r.status_code == 201 for r in results), what="a first post")
        assert delete("/api/v1/artists/" + artist["id"], mod).status_code == 204
        # writes go on until the replica lost the artist
        poll(lambda: any(r.status_code == 422 for r in results), what="a refused post")
        stop.set()
        for t in threads:
            t.join(60)
        made = [r.json() for r in results if r.status_code == 201]
        assert all(r.status_code in (201, 422) for r in results), \
            {r.status_code for r in results}
        for p in made:
            poll(lambda: fetch(path_of(p))["artist_ids"] == [],
                 what="post %s to lose the artist" % p["id"])
        assert requests.get(url(POSTS), params={"artist_id": artist["id"]}).json()["items"] == []


# ---- deleted users ---------------------------------------------------------------------------

def test_a_deleted_users_posts_show_deleted(people):
    gone = account()
    pub = new_post(gone["h"], status="published")
    draft = new_post(gone["h"])
    kept = new_post(people["author"]["h"], status="published")
    r = requests.delete(url("/api/v1/users/me"), json={"password": gone["password"]},
                        headers=gone["h"])
    assert r.status_code == 204, r.text

    got = poll(lambda: (lambda p: p if p["author"] == "[deleted]" else None)(
        fetch(path_of(pub))), what="the post to show [deleted]")
    assert got["author_id"] is None
    assert {k: v for k, v in got.items() if k not in ("author", "author_id", "updated_at")} == \
        {k: v for k, v in pub.items() if k not in ("author", "author_id", "updated_at")}
    # the draft too, which moderators still see
    poll(lambda: fetch_as(path_of(draft), people["moderator"])["author"] == "[deleted]",
         what="the draft to show [deleted]")
    assert fetch(path_of(kept)) == kept
    assert requests.get(url(POSTS), params={"author_id": gone["id"]}).json()["items"] == []
    msgs = post_events({(pub["id"], "encore.post.updated"), (draft["id"], "encore.post.updated")})
    for p in (pub, draft):
        ups = [m for m in msgs if m["key"] == p["id"]
               and m["headers"]["ce_type"] == "encore.post.updated"]
        assert ups[-1]["value"]["author"] == "[deleted]"
        assert ups[-1]["value"]["author_id"] is None
        check_record(ups[-1])


def test_racing_writers_keep_updated_at_rising_and_the_thread_in_step(people):
    """Writers of one post commit in the order of its row lock, not of
    their transactions' starts: each change's updated_at still rises, in
    the order of the post's events, so comments' replica (which keeps the
    newest updated_at it saw) ends on the post's last change.  Regression:
    updated_at = now() let a later commit carry an earlier time, and a
    post back to draft kept its thread open."""
    h = people["author"]["h"]
    p = new_post(h, status="published")
    statuses = ["draft", "published"] * 30

    def send(status):
        r = patch(path_of(p), {"status": status}, h)
        assert r.status_code == 200, r.text

    threads = [threading.Thread(target=send, args=(s,)) for s in statuses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # a last, known change after the race
    final = patch(path_of(p), {"status": "draft"}, h).json()

    k = p["id"]
    msgs = post_events({(k, "encore.post.updated")},
                       also=lambda ms: any(m["value"] == final for m in ms if m["key"] == k))
    stamps = [m["value"]["updated_at"] for m in msgs
              if m["key"] == k and m["headers"]["ce_type"] != "encore.post.deleted"]
    assert len(stamps) >= len(statuses) + 1
    # RFC 3339 UTC with microseconds: text order is time order
    backwards = [(a, b) for a, b in zip(stamps, stamps[1:]) if b < a]
    assert not backwards, backwards

    # the post is a draft: its thread is closed, for everyone
    def thread_closed():
        return requests.get(url("/api/v1/posts/%s/comments" % k)).status_code == 404
    from content_support import poll
    poll(thread_closed, "the thread of the post back to draft to close")
