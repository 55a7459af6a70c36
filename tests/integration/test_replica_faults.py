"""The replicas that keep content and comments consistent, under faults
(issue 8): a consumer killed in the middle of a burst of events applies no
effect twice, and a consumer that was down while events accumulated
catches up with all of them.

The kill is the consumer's fault hook (workers/lib/consumer.h):
ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT=N makes the worker exit right after
the database commit of the Nth event it applied and before that event's
offset commit, so Kafka delivers the event again to the next process.

Everything is checked from outside: the API's answers through the edge,
the events each replica change publishes (one encore.post.updated per post
per artist it was unlinked from, one encore.comment.updated per comment of
a deleted user), and the worker's consumer metrics (/metrics/<worker>) for
the redelivered event the inbox skipped. Events are told apart by ce_id:
the outbox may publish one twice (a relay that died between Kafka's ack and
marking it sent), but a second application of a consumed event would
publish a new one.
"""
import os
import subprocess
import time

import pytest
import requests

from conftest import (ROOT, RUN_DIR, kafka_read, kafka_read_all, login, pid_of,
                      register, stack, url, wait_gone, wait_until)

FAULT = "ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT"
ADMIN_PASSWORD = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")
POSTS_TOPIC = "encore.content.posts"
COMMENTS_TOPIC = "encore.comments.comments"

# replica changes go through a consumer that may have lost its group
# membership: its partitions move on after session.timeout.ms (10 s), and
# a burst takes a while on the ASan build
CONVERGE = 180


def needs(*workers):
    running = os.environ.get("ENCORE_WORKERS", "").split()
    missing = [w for w in workers if w not in running]
    return pytest.mark.skipif(bool(missing), reason="%s not running in this stack"
                              % " and ".join(missing))


# ---- callers and requests ------------------------------------------------------------

def bearer(token):
    return {"Authorization": "Bearer " + token}


def account():
    user, pw = register()
    tok = login(user["username"], pw)
    return {"id": user["id"], "username": user["username"], "password": pw,
            "h": bearer(tok["access_token"])}


@pytest.fixture(scope="module")
def admin():
    return bearer(login("admin", ADMIN_PASSWORD)["access_token"])


def new_artist(h):
    tag = "%x" % time.time_ns()
    r = requests.post(url("/api/v1/artists"), json={"name": "Fault " + tag,
                                                     "slug": "fault-" + tag}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def delete_artist(h, artist_id):
    r = requests.delete(url("/api/v1/artists/" + artist_id), headers=h)
    assert r.status_code == 204, r.text


def try_post(h, artist_ids=(), **kw):
    body = {"title": "Fault post %d" % time.time_ns(), "body": "About *them*.",
            "artist_ids": list(artist_ids)}
    body.update(kw)
    return requests.post(url("/api/v1/posts"), json=body, headers=h)


def post_when_known(h, artist_ids, timeout=CONVERGE, **kw):
    """Creates a post naming artist_ids once content's replica knows every
    one of them (422 until then, 502/503 while content is restarting)."""
    def attempt():
        r = try_post(h, artist_ids, **kw)
        if r.status_code == 201:
            return r.json()
        assert r.status_code in (422, 502, 503), (r.status_code, r.text)
        return None
    return wait_until(attempt, timeout=timeout, step=0.3,
                      what="content's replica to know %s" % list(artist_ids))


def unknown_artists(h, artist_ids):
    """The ids a post naming artist_ids is refused for (422; none when it
    is created), or None when content did not answer."""
    r = try_post(h, artist_ids)
    if r.status_code in (502, 503):
        return None
    if r.status_code == 201:        # not one deletion applied yet
        return set()
    assert r.status_code == 422, (r.status_code, r.text)
    named = [e for e in r.json().get("errors", []) if e["field"].startswith("artist_ids")]
    assert named, r.text
    return {artist_ids[int(e["field"][len("artist_ids["):-1])] for e in named}


def chunks(ids, n=8):
    """ids in groups a post may name at once"""
    ids = list(ids)
    return [ids[i:i + n] for i in range(0, len(ids), n)]


def all_usable(h, artist_ids):
    """Waits until content accepts posts naming each of artist_ids."""
    for part in chunks(artist_ids):
        post_when_known(h, part)


def all_refused(h, artist_ids):
    """Waits until content refuses each of artist_ids (422 naming it)."""
    for part in chunks(sorted(artist_ids)):
        wait_until(lambda: unknown_artists(h, part) == set(part), timeout=CONVERGE,
                   what="content to refuse %s" % part)


def get_post(h, post_id):
    r = requests.get(url("/api/v1/posts/" + post_id), headers=h)
    return r.json() if r.status_code == 200 else None


def comments_status(post_id):
    r = requests.get(url("/api/v1/posts/%s/comments" % post_id))
    return r.status_code


def comment_when_known(h, post_id, timeout=CONVERGE):
    """Comments on a post once comments' replica knows it is published
    (404 until then)."""
    def attempt():
        r = requests.post(url("/api/v1/posts/%s/comments" % post_id),
                          json={"body": "A comment %d" % time.time_ns()}, headers=h)
        if r.status_code == 201:
            return r.json()
        assert r.status_code in (404, 502, 503), (r.status_code, r.text)
        return None
    return wait_until(attempt, timeout=timeout, step=0.3,
                      what="comments' replica to know post %s" % post_id)


def delete_user(who):
    r = requests.delete(url("/api/v1/users/me"), json={"password": who["password"]},
                        headers=who["h"])
    assert r.status_code == 204, r.text


# ---- the worker under test -----------------------------------------------------------

def log_lines(worker):
    p = RUN_DIR / "log" / ("%s.log" % worker)
    return p.read_text(errors="replace").splitlines() if p.exists() else []


def start_worker(worker, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    subprocess.run([str(ROOT / "auto" / "stack"), "start-worker", worker],
                   env=env, check=True, capture_output=True, timeout=120)


def restart_worker(worker, env_extra=None):
    stack("stop-worker", worker)
    start_worker(worker, env_extra)


def armed(worker, n):
    """Restarts worker with the hook armed for its nth applied event;
    returns (its pid, where its log stood)."""
    log_from = len(log_lines(worker))
    restart_worker(worker, {FAULT: str(n)})
    pid = pid_of(worker)
    assert pid, "no pid file for %s" % worker
    return pid, log_from


def kill_during(worker, n, action, *event_types):
    """Restarts worker with the hook armed for its nth applied event, runs
    action (the burst), waits for the hook to end the process on an event
    of one of event_types, and starts the worker again, unarmed.  An event
    from before the burst that the worker had not consumed yet may come
    first and end it instead: then it is armed again for the next event,
    which the burst's events still pending are."""
    pid, log_from = armed(worker, n)
    action()
    for _ in range(5):
        wait_gone(pid, timeout=CONVERGE)
        lines = log_lines(worker)[log_from:]
        said = [l for l in lines if "consumer: fault injection: exiting after" in l]
        assert len(said) == 1, lines[-20:]
        if any("(%s," % t in said[0] for t in event_types):
            start_worker(worker)
            return said[0]
        pid, log_from = armed(worker, 1)
    raise AssertionError("%s never died on %s" % (worker, " or ".join(event_types)))


def counter(worker, name):
    """A counter of a worker's /metrics through the edge (loopback)."""
    r = requests.get(url("/metrics/" + worker), timeout=10)
    if r.status_code != 200:
        return 0.0
    total = 0.0
    for line in r.text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def redelivery_skipped(worker):
    """The event whose offset the dead process never committed came back
    and the inbox skipped it (the restarted process counts from zero)."""
    wait_until(lambda: counter(worker, "encore_consumer_duplicates_total") >= 1,
               timeout=CONVERGE, what="%s to skip the redelivered event" % worker)


def distinct_events(topic, keys, ce_type, after_key=None):
    """{key: {ce_id: value}} of the ce_type records of topic for keys.
    after_key: first wait until a record with that key is on the topic (a
    later write of the same worker: its outbox publishes in commit order,
    so every record committed before it is there too)."""
    if after_key is not None:
        msgs = kafka_read(topic, timeout=CONVERGE,
                          until=lambda ms: any(m["key"] == after_key for m in ms))
        assert any(m["key"] == after_key for m in msgs), "%s never on %s" % (after_key, topic)
    out = {k: {} for k in keys}
    for m in kafka_read_all(topic):
        if m["key"] in out and m["headers"].get("ce_type") == ce_type:
            out[m["key"]][m["headers"]["ce_id"]] = m["value"]
    return out


def assert_unlinked_once(posts, gone, sentinel):
    """Each post in posts ({id: artist ids it named}) published exactly one
    encore.post.updated per artist of gone it named, each naming only
    artists the post named."""
    ups = distinct_events(POSTS_TOPIC, posts, "encore.post.updated", after_key=sentinel)
    for pid, named in posts.items():
        lost = [a for a in named if a in gone]
        assert len(ups[pid]) == len(lost), (pid, lost, list(ups[pid].values()))
        for value in ups[pid].values():
            assert set(value["artist_ids"]) <= set(named), value


# ---- content: the artist replica ---------------------------------------------------------

K = 12          # artists deleted in one burst


@needs("auth", "catalog", "content")
@pytest.mark.timeout(900)
def test_content_killed_mid_burst(admin):
    # (accounts first: their encore.user.registered events are long
    # consumed when the hook is armed, so they do not count towards N)
    author, leaver = account(), account()
    doomed = [new_artist(admin) for _ in range(K)]
    keep = new_artist(admin)
    # posts naming one doomed artist, two, and a surviving one
    posts = {}
    for i, a in enumerate(doomed):
        for named in ([a], [a, doomed[(i + 1) % K]]):
            posts[post_when_known(author["h"], named)["id"]] = named
    posts[post_when_known(author["h"], [keep, doomed[0]])["id"]] = [keep, doomed[0]]
    leavers = [post_when_known(leaver["h"], [keep])["id"] for _ in range(3)]

    # content dies after applying half of the deletions, between the
    # database commit of one of them and its offset commit
    kill_during("content", K // 2, lambda: [delete_artist(admin, a) for a in doomed],
                "encore.artist.deleted")

    # the replica converges: every doomed id is refused, the kept one works,
    # every post lost exactly its doomed artists
    all_refused(author["h"], doomed)
    all_usable(author["h"], [keep])
    for pid_, named in posts.items():
        want = [a for a in named if a == keep]
        wait_until(lambda: (get_post(author["h"], pid_) or {}).get("artist_ids") == want,
                   timeout=CONVERGE, what="post %s unlinked" % pid_)
    redelivery_skipped("content")
    sentinel = post_when_known(author["h"], [keep])["id"]
    assert_unlinked_once(posts, set(doomed), sentinel)

    # then dies right after applying a user's deletion: their posts show
    # [deleted], each published one encore.post.updated, not two
    kill_during("content", 1, lambda: delete_user(leaver), "encore.user.deleted")
    for p in leavers:
        wait_until(lambda: (get_post(admin, p) or {}).get("author") == "[deleted]",
                   timeout=CONVERGE, what="post %s shown as [deleted]" % p)
    redelivery_skipped("content")
    sentinel = post_when_known(author["h"], [keep])["id"]
    ups = distinct_events(POSTS_TOPIC, leavers, "encore.post.updated", after_key=sentinel)
    for p in leavers:
        assert len(ups[p]) == 1, (p, list(ups[p].values()))
        assert list(ups[p].values())[0]["author"] == "[deleted]"


@needs("auth", "catalog", "content")
@pytest.mark.timeout(900)
def test_content_catches_up_after_downtime(admin):
    author, leaver = account(), account()
    known = [new_artist(admin) for _ in range(4)]
    posts = {}
    for i, a in enumerate(known):
        named = [a, known[(i + 1) % len(known)]]
        posts[post_when_known(author["h"], named)["id"]] = named
    leavers_post = post_when_known(leaver["h"], [])["id"]

    stack("stop-worker", "content")
    try:
        # created while content is away; some deleted before it is back
        fresh = [new_artist(admin) for _ in range(20)]
        for a in fresh[:5]:
            delete_artist(admin, a)
        for a in known[:2]:
            delete_artist(admin, a)
        delete_user(leaver)
    finally:
        start_worker("content")

    alive = fresh[5:] + known[2:]
    gone = set(fresh[:5]) | set(known[:2])
    # every surviving artist, the new ones included, is usable
    all_usable(author["h"], alive)
    all_refused(author["h"], gone)
    for pid_, named in posts.items():
        want = [a for a in named if a not in gone]
        wait_until(lambda: (get_post(author["h"], pid_) or {}).get("artist_ids") == want,
                   timeout=CONVERGE, what="post %s unlinked" % pid_)
    wait_until(lambda: (get_post(admin, leavers_post) or {}).get("author") == "[deleted]",
               timeout=CONVERGE, what="the deleted user's post shown as [deleted]")

    sentinel = post_when_known(author["h"], alive[:1])["id"]
    assert_unlinked_once(posts, gone, sentinel)
    left = distinct_events(POSTS_TOPIC, [leavers_post], "encore.post.updated")
    assert len(left[leavers_post]) == 1, left
    assert list(left[leavers_post].values())[0]["author"] == "[deleted]"


# ---- comments: the post replica --------------------------------------------------------

P = 8           # posts in the burst


def published_post(h):
    r = try_post(h, [], status="published")
    assert r.status_code == 201, r.text
    return r.json()["id"]


def set_status(h, post_id, status):
    r = requests.patch(url("/api/v1/posts/" + post_id), json={"status": status}, headers=h)
    assert r.status_code == 200, r.text


def delete_post(h, post_id):
    r = requests.delete(url("/api/v1/posts/" + post_id), headers=h)
    assert r.status_code == 204, r.text


def assert_listings(visible, hidden):
    for p in visible:
        wait_until(lambda: comments_status(p) == 200, timeout=CONVERGE,
                   what="comments of post %s listed" % p)
    for p in hidden:
        wait_until(lambda: comments_status(p) == 404, timeout=CONVERGE,
                   what="comments of post %s gone" % p)


def listed_author(post_id, comment_id):
    """The author a post's listing shows for a comment (None if absent)."""
    r = requests.get(url("/api/v1/posts/%s/comments" % post_id), params={"limit": 100})
    if r.status_code != 200:
        return None
    for c in r.json()["items"]:
        if c["id"] == comment_id:
            return c["author"]
    return None


def assert_shown_deleted(pairs):
    """Every (post, comment) listed with the author [deleted]."""
    for p, c in pairs:
        wait_until(lambda: listed_author(p, c) == "[deleted]", timeout=CONVERGE,
                   what="comment %s shown as [deleted]" % c)


def assert_forgotten_once(comments, sentinel):
    """Each comment of a deleted user published exactly one
    encore.comment.updated (its author now [deleted])."""
    ups = distinct_events(COMMENTS_TOPIC, comments, "encore.comment.updated",
                          after_key=sentinel)
    for cid in comments:
        assert len(ups[cid]) == 1, (cid, list(ups[cid].values()))
        assert list(ups[cid].values())[0]["author"] == "[deleted]"


@needs("auth", "content", "comments")
@pytest.mark.timeout(900)
def test_comments_killed_mid_burst():
    author, leaver, stayer = account(), account(), account()
    posts = [published_post(author["h"]) for _ in range(P)]
    theirs = [comment_when_known(leaver["h"], p)["id"] for p in posts]
    for p in posts:
        comment_when_known(stayer["h"], p)

    # P/2 posts unpublished, P/4 deleted: comments dies half way through
    # those events
    unpublished, deleted = posts[:P // 2], posts[P // 2:P // 2 + P // 4]

    def burst():
        for p in unpublished:
            set_status(author["h"], p, "draft")
        for p in deleted:
            delete_post(author["h"], p)
    kill_during("comments", (P // 2 + P // 4) // 2, burst, "encore.post.updated",
                "encore.post.deleted")

    survivors = [p for p in posts if p not in unpublished and p not in deleted]
    assert_listings(survivors, unpublished + deleted)
    redelivery_skipped("comments")

    # then dies right after applying the commenter's deletion: each of
    # their comments published one encore.comment.updated, not two
    kill_during("comments", 1, lambda: delete_user(leaver), "encore.user.deleted")
    assert_shown_deleted((p, c) for c, p in zip(theirs, posts) if p in survivors)
    redelivery_skipped("comments")
    on_survivors = [c for c, p in zip(theirs, posts) if p in survivors]
    sentinel = comment_when_known(stayer["h"], survivors[0])["id"]
    assert_forgotten_once(on_survivors, sentinel)


@needs("auth", "content", "comments")
@pytest.mark.timeout(900)
def test_comments_catch_up_after_downtime():
    author, leaver, stayer = account(), account(), account()
    before = [published_post(author["h"]) for _ in range(4)]
    theirs = [comment_when_known(leaver["h"], p)["id"] for p in before]

    stack("stop-worker", "comments")
    try:
        born = [published_post(author["h"]) for _ in range(6)]
        drafts = [post_when_known(author["h"], [])["id"] for _ in range(2)]
        set_status(author["h"], drafts[0], "published")    # published later
        set_status(author["h"], born[0], "draft")           # unpublished
        delete_post(author["h"], born[1])
        set_status(author["h"], before[0], "draft")
        delete_post(author["h"], before[1])
        delete_user(leaver)
    finally:
        start_worker("comments")

    visible = born[2:] + [drafts[0]] + before[2:]
    hidden = [born[0], born[1], drafts[1], before[0], before[1]]
    assert_listings(visible, hidden)
    assert_shown_deleted(zip(before[2:], theirs[2:]))
    sentinel = comment_when_known(stayer["h"], visible[0])["id"]
    assert_forgotten_once(theirs[2:], sentinel)
