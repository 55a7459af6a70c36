"""Shared helpers of the comments tests (test_comments*.py): callers with
their ids and names, posts made by writing the content worker's events
straight to Kafka, comment factories, the reference thread order.

Posts: the comments worker learns of posts only from encore.content.posts
(its replica), so a test can make a post of any state by producing the
CloudEvent the content worker would (CONTRACT.md, Events), and knows the
event was applied once the worker's consumer group committed past it
(offsets are committed after the database commit: consumer.h).  This also
lets tests send what the content worker never would: stale, malformed or
repeated events."""
import datetime
import json
import uuid

import pytest
import requests

from conftest import KAFKA, account_with_role, assert_problem, login, url, wait_until
from catalog_support import ADMIN_PASSWORD, bearer, list_all

POSTS_TOPIC = "encore.content.posts"
COMMENTS_TOPIC = "encore.comments.comments"
GROUP = "encore-comments"


# ---- callers ------------------------------------------------------------------------

class Caller:
    """A logged-in account: id, username, token, password; .h is its
    Authorization header ({} for anonymous)."""

    def __init__(self, user=None, token=None, password=None):
        self.id = user["id"] if user else None
        self.name = user["username"] if user else None
        self.token = token
        self.password = password
        self.h = bearer(token)

    def __repr__(self):
        return "<%s>" % (self.name or "anonymous")


def new_caller(role="user", admin_token=None):
    user, pw, session = account_with_role(role, admin_token)
    return Caller(user, session["access_token"], pw)


@pytest.fixture(scope="session")
def people():
    """author, other (users), moderator, admin, anonymous: Callers."""
    admin = login("admin", ADMIN_PASSWORD)
    out = {"anonymous": Caller(),
           "admin": Caller(admin["user"], admin["access_token"], ADMIN_PASSWORD)}
    out["author"] = new_caller()
    out["other"] = new_caller()
    out["moderator"] = new_caller("moderator", admin["access_token"])
    return out


# ---- posts, as the content worker's events ------------------------------------------

_producer = None


def producer():
    global _producer
    if _producer is None:
        from confluent_kafka import Producer
        _producer = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True,
                              "acks": "all"})
    return _producer


def now_iso(offset=0.0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def post_value(post_id, status="published", updated_at=None, **kw):
    """A post as the content worker answers it (CONTRACT.md, Content)."""
    t = updated_at or now_iso()
    v = {"id": post_id, "author_id": str(uuid.uuid4()), "author": "someone",
         "title": "Post", "body": "text", "status": status, "artist_ids": [], "tags": [],
         "created_at": t, "updated_at": t,
         "published_at": t if status == "published" else None}
    v.update(kw)
    return v


def produce(key, ce_type, value, topic=POSTS_TOPIC, raw=None, headers=None):
    """One CloudEvent in binary mode; returns (partition, offset)."""
    hdrs = {"ce_specversion": "1.0", "ce_id": str(uuid.uuid4()),
            "ce_source": "/encore/content", "ce_type": ce_type, "ce_time": now_iso(),
            "ce_subject": "posts/%s" % key, "content-type": "application/json"}
    if headers is not None:
        hdrs = headers
    got = {}

    def done(err, msg):
        got["err"], got["msg"] = err, msg

    data = raw if raw is not None else json.dumps(value).encode()
    producer().produce(topic, key=key.encode() if key is not None else None, value=data,
                       headers=list(hdrs.items()), on_delivery=done)
    producer().flush(30)
    assert got.get("err") is None and got.get("msg") is not None, got
    return got["msg"].partition(), got["msg"].offset()


def wait_applied(topic, partition, offset, timeout=60):
    """Until the comments worker's consumer group committed past offset:
    the event, and every one before it on its partition, is applied (or
    was skipped)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": KAFKA, "group.id": GROUP,
                  "enable.auto.commit": False})
    try:
        def committed():
            tp = c.committed([TopicPartition(topic, partition)], timeout=10)[0]
            return tp.offset > offset
        wait_until(committed, timeout=timeout, step=0.1,
                   what="%s[%d] committed past %d" % (topic, partition, offset))
    finally:
        c.close()


def post_event(post_id, ce_type="encore.post.published", status="published",
               updated_at=None, wait=True, **kw):
    """Produces one post event and, with wait, waits until it is applied."""
    value = {"id": post_id} if ce_type == "encore.post.deleted" else \
        post_value(post_id, status, updated_at, **kw)
    where = produce(post_id, ce_type, value)
    if wait:
        wait_applied(POSTS_TOPIC, *where)
    return where


def new_post(status="published"):
    """A post the comments worker knows, in this state: its id."""
    post_id = str(uuid.uuid4())
    post_event(post_id, "encore.post.created", status)
    return post_id


def unpublish(post_id):
    post_event(post_id, "encore.post.updated", "draft")


def publish(post_id):
    post_event(post_id, "encore.post.published", "published")


def delete_post(post_id):
    post_event(post_id, "encore.post.deleted")


# ---- comments -------------------------------------------------------------------------

def comments_path(post_id):
    return "/api/v1/posts/%s/comments" % post_id


def add(s, caller, post_id, body=None, parent_id=None):
    """Creates a comment (201 asserted): its JSON.  s: a requests.Session
    or the requests module."""
    b = {"body": body or "comment %s" % uuid.uuid4().hex[:8]}
    if parent_id is not None:
        b["parent_id"] = parent_id
    r = s.post(url(comments_path(post_id)), json=b, headers=caller.h)
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


def listing(post_id, limit=100):
    """Every item of a post's thread, page by page, checking the pages."""
    return list_all(comments_path(post_id), limit=limit)


def depth_first(comments):
    """The reference thread order: comments (dicts with id, parent_id),
    given oldest first, walked depth first, oldest first within a parent."""
    children = {}
    for c in comments:
        children.setdefault(c["parent_id"], []).append(c)
    out, stack = [], list(reversed(children.get(None, [])))
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(reversed(children.get(c["id"], [])))
    return out


def assert_listing_404(post_id, headers=None):
    r = requests.get(url(comments_path(post_id)), headers=headers or {})
    body = assert_problem(r, 404)
    assert body["detail"] == "no such post", body
    return body


def wait_listing(post_id, status, timeout=60):
    return wait_until(lambda: requests.get(url(comments_path(post_id))).status_code == status,
                      timeout=timeout, what="listing of %s answering %d" % (post_id, status))

