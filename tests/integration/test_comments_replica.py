"""The comments worker's consumer under faults (issue 8: each replica
converging after its source's events; a consumer killed mid-batch applies
no effect twice; a consumer that was down while events accumulated catches
up).  The source here is the content worker's topic, written by the test
(comments_support), and auth's encore.user.deleted, caused through the
API."""
import random
import signal
import subprocess
import uuid

import pytest
import requests

from conftest import ROOT, kafka_read_all, signal_part, stack, url, wait_gone, wait_until
from comments_support import (COMMENTS_TOPIC, POSTS_TOPIC, add, comments_path,  # noqa: F401
                              new_caller, new_post, now_iso, people, post_event,
                              wait_applied)


def start_comments():
    subprocess.run([str(ROOT / "auto" / "stack"), "start-worker", "comments"],
                   check=True, capture_output=True, timeout=120)
    wait_until(lambda: requests.get(url("/readyz")).status_code == 200, timeout=60,
               what="/readyz after restarting comments")


def random_history(rng, n_posts):
    """Events for n_posts posts, interleaved, with their expected final
    visibility: [(post_id, ce_type, status, updated_at)], {post_id: visible}."""
    events, final, clock = [], {}, [0]

    def tick():
        clock[0] += 1
        return now_iso(clock[0] / 1000.0)

    for _ in range(n_posts):
        pid = str(uuid.uuid4())
        steps, state = [], None
        for _ in range(rng.randint(1, 6)):
            if state == "deleted":
                break
            kind = rng.choice(["draft", "published", "published", "deleted"])
            if kind == "deleted" and rng.random() < 0.6:
                kind = "published"
            ce = {"draft": "encore.post.updated", "published": "encore.post.published",
                  "deleted": "encore.post.deleted"}[kind]
            if state is None and kind != "deleted":
                ce = "encore.post.created"
            steps.append((pid, ce, kind, tick()))
            state = kind
        final[pid] = state == "published"
        events.append(steps)
    # interleave the posts' histories, each in its own order
    out = []
    while any(events):
        steps = rng.choice([s for s in events if s])
        out.append(steps.pop(0))
    return out, final


def produce_history(history):
    last = {}
    for pid, ce, status, t in history:
        where = post_event(pid, ce, "draft" if status == "deleted" else status,
                           updated_at=t, wait=False)
        last[where[0]] = max(last.get(where[0], -1), where[1])
    return last


def assert_converged(final):
    for pid, visible in final.items():
        r = requests.get(url(comments_path(pid)))
        assert r.status_code == (200 if visible else 404), (pid, visible, r.status_code)


def updated_events(ids):
    """{comment id: how many distinct encore.comment.updated events (by
    ce_id) it has on the topic}, once each has one: the relay publishes
    after the consumer committed, so the topic may lag the listing."""
    def read():
        out = {i: set() for i in ids}
        for m in kafka_read_all(COMMENTS_TOPIC):
            if m["key"] in out and m["headers"]["ce_type"] == "encore.comment.updated":
                out[m["key"]].add(m["headers"]["ce_id"])
        return out if all(out.values()) else None
    return {k: len(v) for k, v in wait_until(read, timeout=90, step=0.5,
                                             what="an updated event per comment").items()}


def test_replica_converges_on_random_histories():
    rng = random.Random(8)
    history, final = random_history(rng, 60)
    for part, offset in produce_history(history).items():
        wait_applied(POSTS_TOPIC, part, offset)
    assert_converged(final)


@pytest.mark.timeout(300)
def test_a_consumer_that_was_down_catches_up(people):
    rng = random.Random(9)
    keep = new_post()
    gone = new_caller()
    mine = [add(requests, gone, keep) for _ in range(3)]
    stack("stop-worker", "comments")
    try:
        history, final = random_history(rng, 40)
        last = produce_history(history)
        r = requests.delete(url("/api/v1/users/me"), json={"password": gone.password},
                            headers=gone.h)
        assert r.status_code == 204, r.text
        # nothing answers for comments meanwhile
        assert requests.get(url(comments_path(keep))).status_code == 502
    finally:
        start_comments()
    for part, offset in last.items():
        wait_applied(POSTS_TOPIC, part, offset)
    assert_converged(final)
    wait_until(lambda: all(c["author"] == "[deleted]" for c in requests.get(
        url(comments_path(keep))).json()["items"]), timeout=90, what="[deleted] authors")
    assert updated_events([c["id"] for c in mine]) == {c["id"]: 1 for c in mine}


@pytest.mark.timeout(300)
def test_a_consumer_killed_mid_batch_applies_nothing_twice(people):
    """SIGKILL while the consumer works through a backlog: what it had
    committed stays, what it had not is applied after the restart, and no
    effect twice (one updated event per comment of a deleted author)."""
    rng = random.Random(10)
    posts = [new_post() for _ in range(3)]
    authors = [new_caller() for _ in range(4)]
    comments = {a.id: [add(requests, a, rng.choice(posts)) for _ in range(10)] for a in authors}
    history, final = random_history(rng, 80)
    last = produce_history(history)
    for a in authors:
        r = requests.delete(url("/api/v1/users/me"), json={"password": a.password}, headers=a.h)
        assert r.status_code == 204, r.text
    pid = signal_part("comments", signal.SIGKILL)
    wait_gone(pid)
    start_comments()
    for part, offset in last.items():
        wait_applied(POSTS_TOPIC, part, offset)
    assert_converged(final)
    ids = [c["id"] for cs in comments.values() for c in cs]

    def forgotten():
        items = {}
        for p in posts:
            items.update({i["id"]: i for i in requests.get(
                url(comments_path(p)), params={"limit": 100}).json()["items"]})
        return all(items[i]["author"] == "[deleted]" and items[i]["author_id"] is None
                   for i in ids)
    wait_until(forgotten, timeout=90, what="every author shown as [deleted]")
    assert updated_events(ids) == {i: 1 for i in ids}
