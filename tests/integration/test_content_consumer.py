"""The content worker's consumer under faults (issue 8): a worker that was
down while catalog events accumulated catches up when it comes back; one
killed while it applies a batch applies no event twice (the inbox).  Where
the kill lands is not forced (the consumer has no fault hook like the
relay's): between two events, inside one (rolled back), or between an
event's commit and its offset's (replayed, skipped by the inbox); each
way every post is unlinked once.  The effects are polled for with a
bound, never timed."""
import signal

import pytest
import requests

from conftest import kafka_events, signal_part, stack, url, wait_gone
from catalog_support import delete, mod, new_artist, tokens  # noqa: F401
from content_support import (POSTS, fetch, new_post, people, poll,  # noqa: F401
                             post_body, types_of)
from test_content import path_of, wait_replica

ARTISTS_TOPIC = "encore.catalog.artists"


def restart(kill=None):
    """Stops the content worker (TERM, or kill with the signal given) and
    returns a function that starts it again."""
    if kill is None:
        stack("stop-worker", "content")
    else:
        wait_gone(signal_part("content", kill), timeout=60)

    def start():
        stack("start-worker", "content")
    return start


def updates_of(posts):
    """{post id: [its encore.post.updated events, each once]} once every
    post has one."""
    want = {(p["id"], "encore.post.updated") for p in posts}
    msgs = kafka_events("encore.content.posts", want)
    out = {}
    for p in posts:
        ids = []
        for m in msgs:
            if m["key"] == p["id"] and m["headers"]["ce_type"] == "encore.post.updated" \
                    and m["headers"]["ce_id"] not in ids:
                ids.append(m["headers"]["ce_id"])
        out[p["id"]] = ids
    return out


@pytest.mark.timeout(300)
def test_a_consumer_that_was_down_catches_up(people, mod):
    h = people["author"]["h"]
    doomed = new_artist(mod)
    wait_replica([doomed["id"]], people["author"])
    posts = [new_post(h, status=s, artist_ids=[doomed["id"]]) for s in ("published", "draft")]

    start = restart()
    try:
        # while it is down: a new artist, and the deletion of one posts name
        fresh = new_artist(mod)
        assert delete("/api/v1/artists/" + doomed["id"], mod).status_code == 204
        r = requests.post(url(POSTS), json=post_body(), headers=h)
        assert r.status_code == 502, r.status_code
    finally:
        start()

    wait_replica([fresh["id"]], people["author"])
    for p in posts:
        poll(lambda: requests.get(url(path_of(p)), headers=h).json()["artist_ids"] == [],
             what="post %s to lose the artist deleted while content was down" % p["id"])
    assert all(len(ids) == 1 for ids in updates_of(posts).values())
    # the events content applied are the catalog's, in their order
    kafka_events(ARTISTS_TOPIC, {(doomed["id"], "encore.artist.deleted"),
                                 (fresh["id"], "encore.artist.created")})


@pytest.mark.timeout(300)
def test_a_consumer_killed_mid_batch_applies_nothing_twice(people, mod):
    h = people["author"]["h"]
    artists = [new_artist(mod) for _ in range(12)]
    wait_replica([a["id"] for a in artists], people["author"])
    posts = [new_post(h, status="published", artist_ids=[a["id"]]) for a in artists]

    # the deletions go out, and the worker is killed while it applies them
    for a in artists:
        assert delete("/api/v1/artists/" + a["id"], mod).status_code == 204
    start = restart(kill=signal.SIGKILL)
    start()

    for p in posts:
        poll(lambda: fetch(path_of(p))["artist_ids"] == [],
             what="post %s to lose its artist" % p["id"])
    # each unlink happened once: one update each, whatever was replayed
    ups = updates_of(posts)
    assert all(len(ids) == 1 for ids in ups.values()), ups
    for p in posts:
        assert fetch(path_of(p))["updated_at"] > p["updated_at"]
    msgs = kafka_events("encore.content.posts", {(posts[0]["id"], "encore.post.updated")})
    assert types_of(msgs, posts[0]["id"]) == ["encore.post.created", "encore.post.published",
                                              "encore.post.updated"]
