"""Comments through the edge (CONTRACT.md, Comments; openapi comments_*):
threads, who may write, every field's rules, the listing and its cursors,
the events, and the post replica the worker keeps from encore.content.posts
(posts are made by producing the content worker's events: comments_support).
The thread-order property test is test_comments_thread.py."""
import json
import urllib.parse
import uuid

import pytest
import requests

from conftest import ROOT, assert_problem, kafka_read, url, wait_until, worker_request
from catalog_support import assert_invalid, conforms
from comments_support import (COMMENTS_TOPIC, POSTS_TOPIC, add, assert_listing_404,  # noqa: F401
                              comments_path, delete_post, listing, new_caller, new_post,
                              now_iso, people, post_event, produce, publish, unpublish,
                              wait_applied)

NOT_UUIDS = ("abc", "0", "00000000-0000-0000-0000-00000000000",
             "g0000000-0000-0000-0000-000000000000", "{00000000-0000-0000-0000-000000000000}")
ASTRAL = "\U0001F3B5"


def comment_path(comment_id):
    return "/api/v1/comments/%s" % comment_id


def post_comment(caller, post_id, body, **kw):
    return requests.post(url(comments_path(post_id)), json=body, headers=caller.h, **kw)


def patch_comment(caller, comment_id, body, **kw):
    return requests.patch(url(comment_path(comment_id)), json=body, headers=caller.h, **kw)


def delete_comment(caller, comment_id):
    return requests.delete(url(comment_path(comment_id)), headers=caller.h)


@pytest.fixture(scope="module")
def post_id():
    return new_post()


# ---- create ----------------------------------------------------------------------------------

def test_create_top_level_and_replies(people, post_id):
    a = people["author"]
    r = post_comment(a, post_id, {"body": "first!"})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    c = conforms("Comment", r.json())
    assert urllib.parse.urljoin(url("/"), r.headers["Location"]) == url(comment_path(c["id"]))
    assert c["post_id"] == post_id and c["parent_id"] is None
    assert c["author_id"] == a.id and c["author"] == a.name
    assert c["body"] == "first!" and c["depth"] == 0 and c["deleted"] is False
    assert c["created_at"] == c["updated_at"]
    uuid.UUID(c["id"])

    parent = c
    for depth in range(1, 9):
        r = post_comment(people["other"], post_id, {"body": "reply %d" % depth,
                                                    "parent_id": parent["id"]})
        assert r.status_code == 201, r.text
        reply = conforms("Comment", r.json())
        assert reply["parent_id"] == parent["id"] and reply["depth"] == depth
        assert reply["author"] == people["other"].name
        parent = reply

    # depth 8 is the deepest: a reply to it is 422 naming the limit
    r = post_comment(a, post_id, {"body": "too deep", "parent_id": parent["id"]})
    body = assert_invalid(r, "parent_id")
    assert "8" in body["errors"][0]["message"], body

    # the thread: depth first
    items = listing(post_id)
    mine = [i for i in items if i["id"] == c["id"] or i["depth"] > 0]
    assert [i["depth"] for i in mine][:9] == list(range(9))


def test_parent_must_be_on_the_same_post(people, post_id):
    other_post = new_post()
    elsewhere = add(requests, people["author"], other_post)
    for parent in (elsewhere["id"], str(uuid.uuid4())):
        r = post_comment(people["author"], post_id, {"body": "x", "parent_id": parent})
        assert_invalid(r, "parent_id")
    # null is a top-level comment
    r = post_comment(people["author"], post_id, {"body": "x", "parent_id": None})
    assert r.status_code == 201, r.text
    assert r.json()["parent_id"] is None and r.json()["depth"] == 0


def test_a_deleted_comment_can_still_be_replied_to(people, post_id):
    c = add(requests, people["author"], post_id)
    assert delete_comment(people["author"], c["id"]).status_code == 204
    reply = add(requests, people["other"], post_id, parent_id=c["id"])
    assert reply["depth"] == 1
    ids = [i["id"] for i in listing(post_id)]
    assert ids.index(reply["id"]) == ids.index(c["id"]) + 1


def test_commenting_needs_a_visible_post(people):
    a = people["author"]
    draft = new_post("draft")
    gone = new_post()
    delete_post(gone)
    for pid in (str(uuid.uuid4()), draft, gone):
        body = assert_problem(post_comment(a, pid, {"body": "hello"}), 404)
        assert body["detail"] == "no such post", body
        # a reply too, whatever its parent
        assert_problem(post_comment(a, pid, {"body": "x", "parent_id": str(uuid.uuid4())}), 404)
    for bad in NOT_UUIDS:
        r = requests.post(url("/api/v1/posts/%s/comments" % bad), json={"body": "x"},
                          headers=a.h)
        assert_problem(r, 404)


def test_identity_fields_are_not_writable(people, post_id):
    a = people["author"]
    for member, value in (("post_id", post_id), ("author_id", a.id), ("author", "me"),
                          ("id", str(uuid.uuid4())), ("depth", 0), ("deleted", False),
                          ("created_at", now_iso()), ("path", "000000000001"),
                          ("bodyy", "typo")):
        r = post_comment(a, post_id, {"body": "x", member: value})
        assert_invalid(r, member)


# ---- every field's rules -----------------------------------------------------------------

BAD_BODIES = [
    ({}, ["body"]),
    ({"body": None}, ["body"]),
    ({"body": ""}, ["body"]),
    ({"body": "   \n\t"}, ["body"]),
    ({"body": "x" * 10001}, ["body"]),
    ({"body": 1}, ["body"]),
    ({"body": True}, ["body"]),
    ({"body": ["x"]}, ["body"]),
    ({"body": {"x": 1}}, ["body"]),
    ({"body": "a\u0000b"}, ["body"]),
    ({"body": "x", "parent_id": "abc"}, ["parent_id"]),
    ({"body": "x", "parent_id": 1}, ["parent_id"]),
    ({"body": "x", "parent_id": ""}, ["parent_id"]),
    ({"body": "x", "parent_id": ["00000000-0000-0000-0000-000000000000"]}, ["parent_id"]),
    ({"body": "", "parent_id": "abc"}, ["body", "parent_id"]),
]


@pytest.mark.parametrize("body, fields", BAD_BODIES, ids=[json.dumps(b)[:40] for b, _ in BAD_BODIES])
def test_create_refuses_bad_values(people, post_id, body, fields):
    assert_invalid(post_comment(people["author"], post_id, body), *fields)


def test_patch_refuses_bad_values(people, post_id):
    a = people["author"]
    c = add(requests, a, post_id)
    for body, fields in [b for b in BAD_BODIES if "parent_id" not in b[0]]:
        if body == {}:
            fields = [""]        # "names no field to change"
        r = patch_comment(a, c["id"], body)
        assert_problem(r, 422)
        named = {e["field"].split("[", 1)[0] for e in r.json()["errors"]}
        assert named == set(fields), (body, r.json())
    # a reply does not move, nor change hands
    for member, value in (("parent_id", None), ("post_id", post_id), ("author", "x"),
                          ("author_id", a.id), ("deleted", True), ("depth", 1)):
        assert_invalid(patch_comment(a, c["id"], {"body": "y", member: value}), member)
    # nothing changed
    assert [i for i in listing(post_id) if i["id"] == c["id"]] == [c]


def test_bodies_that_are_no_json_object(people, post_id):
    a = people["author"]
    c = add(requests, a, post_id)
    for method, path in (("POST", comments_path(post_id)), ("PATCH", comment_path(c["id"]))):
        r = requests.request(method, url(path), data=b'{"body": ', headers=dict(
            a.h, **{"Content-Type": "application/json"}))
        assert_problem(r, 400)
        r = requests.request(method, url(path), data=b'{"body": "x"}', headers=dict(
            a.h, **{"Content-Type": "text/plain"}))
        assert_problem(r, 415)
        for doc in (b"[]", b'"body"', b"null", b"1"):
            r = requests.request(method, url(path), data=doc, headers=dict(
                a.h, **{"Content-Type": "application/json"}))
            assert r.status_code in (400, 422), (method, doc, r.status_code)
            assert_problem(r, r.status_code)


def test_the_longest_comment(people, post_id):
    a = people["author"]
    r = post_comment(a, post_id, {"body": ASTRAL * 10000})
    assert r.status_code == 201, r.status_code
    c = r.json()
    assert c["body"] == ASTRAL * 10000
    r = patch_comment(a, c["id"], {"body": "é" * 10000})
    assert r.status_code == 200 and r.json()["body"] == "é" * 10000


# ---- edit and delete -------------------------------------------------------------------

def test_author_edits(people, post_id):
    a = people["author"]
    c = add(requests, a, post_id, body="before")
    r = patch_comment(a, c["id"], {"body": "after"})
    assert r.status_code == 200, r.text
    changed = conforms("Comment", r.json())
    assert changed["body"] == "after" and changed["updated_at"] > c["updated_at"]
    assert {k: v for k, v in changed.items() if k not in ("body", "updated_at")} == \
        {k: v for k, v in c.items() if k not in ("body", "updated_at")}
    assert [i for i in listing(post_id) if i["id"] == c["id"]] == [changed]


def test_delete_keeps_the_place(people, post_id):
    a = people["author"]
    top = add(requests, a, post_id)
    c = add(requests, a, post_id, parent_id=top["id"])
    reply = add(requests, people["other"], post_id, parent_id=c["id"])
    before = [i["id"] for i in listing(post_id)]
    r = delete_comment(a, c["id"])
    assert r.status_code == 204 and r.content == b""
    items = listing(post_id)
    assert [i["id"] for i in items] == before
    gone = [i for i in items if i["id"] == c["id"]][0]
    conforms("Comment", gone)
    assert gone["deleted"] is True and gone["body"] == ""
    assert gone["author"] == a.name and gone["depth"] == 1 and gone["parent_id"] == top["id"]
    assert [i for i in items if i["id"] == reply["id"]][0]["body"] == reply["body"]
    # nothing left to edit or delete: 404 to everyone
    for who in ("author", "moderator", "admin"):
        assert_problem(patch_comment(people[who], c["id"], {"body": "back"}), 404)
        assert_problem(delete_comment(people[who], c["id"]), 404)


@pytest.mark.parametrize("who", ["moderator", "admin"])
def test_staff_delete_any_comment(people, post_id, who):
    c = add(requests, people["author"], post_id)
    r = delete_comment(people[who], c["id"])
    assert r.status_code == 204, r.text
    assert [i for i in listing(post_id) if i["id"] == c["id"]][0]["deleted"] is True


def test_unknown_comments_are_404(people):
    for who in ("author", "moderator"):
        for cid in (str(uuid.uuid4()),) + NOT_UUIDS:
            body = assert_problem(patch_comment(people[who], cid, {"body": "x"}), 404)
            assert body["detail"] == "no such comment"
            assert_problem(delete_comment(people[who], cid), 404)


# ---- the authorization table -------------------------------------------------------------
#
# Per route, per caller: anonymous, a user who is not the author, the
# author, a moderator, an admin (CONTRACT.md: create user, edit author,
# delete author or moderator+; what a caller may not see is 404).

AUTHZ = {
    "list":   {"anonymous": 200, "other": 200, "author": 200, "moderator": 200, "admin": 200},
    "create": {"anonymous": 401, "other": 201, "author": 201, "moderator": 201, "admin": 201},
    "patch":  {"anonymous": 401, "other": 403, "author": 200, "moderator": 403, "admin": 403},
    "delete": {"anonymous": 401, "other": 403, "author": 204, "moderator": 204, "admin": 204},
}


@pytest.mark.parametrize("route", sorted(AUTHZ))
@pytest.mark.parametrize("who", ["anonymous", "other", "author", "moderator", "admin"])
def test_authorization_table(people, post_id, route, who):
    caller = people[who]
    c = add(requests, people["author"], post_id)
    if route == "list":
        r = requests.get(url(comments_path(post_id)), headers=caller.h)
    elif route == "create":
        r = post_comment(caller, post_id, {"body": "x", "parent_id": c["id"]})
    elif route == "patch":
        r = patch_comment(caller, c["id"], {"body": "changed"})
    else:
        r = delete_comment(caller, c["id"])
    want = AUTHZ[route][who]
    assert r.status_code == want, (route, who, r.status_code, r.text)
    if want == 401:
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    if want == 403:
        assert_problem(r, 403)
    # a refused write changed nothing
    if want in (401, 403):
        assert [i for i in listing(post_id) if i["id"] == c["id"]] == [c]


@pytest.mark.parametrize("state", ["unknown", "draft", "unpublished", "deleted"])
def test_hidden_posts_hide_their_comments_from_everyone(people, state):
    """What a caller may not see is 404 for every route and every role,
    the staff's included: the comments of a post that is not published."""
    pid = new_post("draft") if state == "draft" else new_post()
    c = None
    if state in ("unpublished", "deleted"):
        c = add(requests, people["author"], pid)
    if state == "unknown":
        pid = str(uuid.uuid4())
    elif state == "unpublished":
        unpublish(pid)
    elif state == "deleted":
        delete_post(pid)
    for who in ("anonymous", "other", "author", "moderator", "admin"):
        h = people[who].h
        assert_listing_404(pid, h)
        if who == "anonymous":
            continue
        assert_problem(post_comment(people[who], pid, {"body": "x"}), 404)
        if c is not None:
            assert_problem(patch_comment(people[who], c["id"], {"body": "y"}), 404)
            assert_problem(delete_comment(people[who], c["id"]), 404)


# ---- the listing -----------------------------------------------------------------------------

def test_empty_thread_and_page_rules(people):
    pid = new_post()
    r = requests.get(url(comments_path(pid)))
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    conforms("CommentList", r.json())
    for bad in ("0", "101", "-1", "x", "1.5", ""):
        r = requests.get(url(comments_path(pid)), params={"limit": bad})
        assert_invalid(r, "limit")
    cs = [add(requests, people["author"], pid) for _ in range(5)]
    r = requests.get(url(comments_path(pid)), params={"limit": 2})
    page = conforms("CommentList", r.json())
    assert [i["id"] for i in page["items"]] == [c["id"] for c in cs[:2]]
    cursor = page["next_cursor"]
    assert cursor
    # a cursor is for its own post's list only
    other = new_post()
    add(requests, people["author"], other)
    r = requests.get(url(comments_path(other)), params={"cursor": cursor})
    assert_problem(r, 400)
    for bad in ("x", cursor[:-2], cursor + "A", "A" * 600):
        assert_problem(requests.get(url(comments_path(pid)), params={"cursor": bad}), 400)
    # a page past the last: empty, no cursor
    r = requests.get(url(comments_path(pid)), params={"limit": 5})
    assert r.json()["next_cursor"] is None
    assert listing(pid, limit=1) == listing(pid)
    assert [i["id"] for i in listing(pid)] == [c["id"] for c in cs]
    # an invalid token is 401 even where identity is optional
    r = requests.get(url(comments_path(pid)), headers={"Authorization": "Bearer x.y.z"})
    assert_problem(r, 401)


def test_listing_is_thread_order(people):
    """A small, hand-made tree (the random ones: test_comments_thread.py)."""
    pid = new_post()
    a, o = people["author"], people["other"]
    t1 = add(requests, a, pid)
    t2 = add(requests, o, pid)
    r11 = add(requests, o, pid, parent_id=t1["id"])
    r21 = add(requests, a, pid, parent_id=t2["id"])
    r111 = add(requests, a, pid, parent_id=r11["id"])
    r12 = add(requests, a, pid, parent_id=t1["id"])
    t3 = add(requests, a, pid)
    r1111 = add(requests, o, pid, parent_id=r111["id"])
    want = [t1, r11, r111, r1111, r12, t2, r21, t3]
    for limit in (1, 2, 3, 100):
        assert [i["id"] for i in listing(pid, limit=limit)] == [c["id"] for c in want]


# ---- the post replica ----------------------------------------------------------------------

def test_replica_follows_the_post(people):
    pid = new_post("draft")
    assert_listing_404(pid)
    publish(pid)
    c = add(requests, people["author"], pid)
    unpublish(pid)
    assert_listing_404(pid)
    publish(pid)
    assert [i["id"] for i in listing(pid)] == [c["id"]]
    delete_post(pid)
    assert_listing_404(pid)
    # a deleted post stays deleted: a later (replayed, reordered) event
    # of it is ignored
    post_event(pid, "encore.post.published", "published", updated_at=now_iso(3600))
    assert_listing_404(pid)
    assert_problem(post_comment(people["author"], pid, {"body": "x"}), 404)


def test_replica_ignores_stale_events(people):
    pid = str(uuid.uuid4())
    post_event(pid, "encore.post.published", "published", updated_at=now_iso(10))
    add(requests, people["author"], pid)
    # an older state, delivered late: changes nothing
    post_event(pid, "encore.post.updated", "draft", updated_at=now_iso(-10))
    assert len(listing(pid)) == 1
    # a newer one does
    post_event(pid, "encore.post.updated", "draft", updated_at=now_iso(20))
    assert_listing_404(pid)


def test_replica_skips_what_it_cannot_read(people):
    """Events the worker cannot apply are skipped, and do not stop the
    ones after them on their partition.  (Values that are no JSON at all
    are the consumer's unit tests': on this shared topic they would break
    every other reader of it.)"""
    pid = str(uuid.uuid4())
    for key, ce_type, raw in (
            ("not-a-uuid", "encore.post.published", json.dumps({"status": "published"})),
            (pid, "encore.post.published", json.dumps({"status": "published",
                                                       "updated_at": "yesterday"})),
            (pid, "encore.post.published", json.dumps(["published"])),
            (pid, "encore.post.archived", json.dumps({"status": "published"})),
            # an empty key: a compacted topic refuses a record with none
            ("", "encore.post.deleted", json.dumps({"id": pid}))):
        produce(key, ce_type, None, raw=raw.encode())
    # the post is known now (the event with an unreadable time, then the
    # array: a post of unknown status), and this one is applied after them
    post_event(pid, "encore.post.published", "published")
    add(requests, people["author"], pid)
    assert len(listing(pid)) == 1


def test_a_replayed_event_changes_nothing(people):
    """At-least-once delivery: an event delivered again, after a later one
    of the same post, leaves the later state (the inbox knows its ce_id)."""
    pid = str(uuid.uuid4())
    value = {"id": pid, "status": "published", "updated_at": now_iso()}
    headers = {"ce_specversion": "1.0", "ce_id": str(uuid.uuid4()),
               "ce_source": "/encore/content", "ce_type": "encore.post.published",
               "ce_time": now_iso(), "ce_subject": "posts/" + pid}
    wait_applied(POSTS_TOPIC, *produce(pid, None, value, headers=headers))
    add(requests, people["author"], pid)
    unpublish(pid)
    wait_applied(POSTS_TOPIC, *produce(pid, None, value, headers=headers))
    assert_listing_404(pid)


# ---- deleted authors -------------------------------------------------------------------

def test_a_deleted_users_comments_show_deleted(people):
    pid = new_post()
    gone = new_caller()
    mine = [add(requests, gone, pid)]
    mine.append(add(requests, gone, pid, parent_id=mine[0]["id"]))
    kept = add(requests, people["other"], pid, parent_id=mine[0]["id"])
    r = requests.delete(url("/api/v1/users/me"), json={"password": gone.password},
                        headers=gone.h)
    assert r.status_code == 204, r.text

    def forgotten():
        items = {i["id"]: i for i in listing(pid)}
        return all(items[c["id"]]["author"] == "[deleted]" for c in mine) and items

    items = wait_until(forgotten, timeout=60, what="the author shown as [deleted]")
    for c in mine:
        i = conforms("Comment", items[c["id"]])
        assert i["author_id"] is None and i["body"] == c["body"]
        assert i["updated_at"] >= c["updated_at"]
    assert items[kept["id"]] == kept
    # each changed comment published encore.comment.updated, valid
    want = {c["id"] for c in mine}
    msgs = kafka_read(COMMENTS_TOPIC, until=lambda ms: want <= {
        m["key"] for m in ms if m["headers"]["ce_type"] == "encore.comment.updated"},
        timeout=60)
    updated = {m["key"]: m for m in msgs if m["headers"]["ce_type"] == "encore.comment.updated"}
    for c in mine:
        assert updated[c["id"]]["value"] == items[c["id"]]
        check_record(updated[c["id"]])


def test_a_deleted_users_later_comments_show_deleted(people):
    """The edge refuses a deleted user's access token once the revocation
    reached it (test_revocation.py), but a request may race it, and a
    token's identity may reach the worker around the edge: a comment
    written with it after the deletion was applied is "[deleted]" at
    once, and one racing the deletion's event is "[deleted]" once it is
    applied."""
    pid = new_post()
    gone = new_caller()
    before = add(requests, gone, pid)
    r = requests.delete(url("/api/v1/users/me"), json={"password": gone.password},
                        headers=gone.h)
    assert r.status_code == 204, r.text
    # racing the event (and the edge's revocation): whichever comes first,
    # the comment ends up forgotten, or the edge refused it
    b = {"body": "racing %s" % uuid.uuid4().hex[:8]}
    r = requests.post(url(comments_path(pid)), json=b, headers=gone.h)
    assert r.status_code in (201, 401), r.text
    racing = r.json() if r.status_code == 201 else None
    wait_until(lambda: {i["id"]: i for i in listing(pid)}[before["id"]]["author"] == "[deleted]",
               timeout=60, what="the deletion applied")
    # the edge: revoked
    wait_until(lambda: "revoked (deleted)" in requests.post(
        url(comments_path(pid)), json={"body": "no"}, headers=gone.h).text,
        timeout=30, what="the edge refusing the token")
    # the worker, reached with the identity the token carried
    ident = {"X-Encore-User-Id": gone.id, "X-Encore-User-Role": "user",
             "X-Encore-User-Name": gone.name}

    def around(body):
        r = worker_request("comments", "POST", comments_path(pid), body=body, headers=ident)
        assert r.status_code == 201, r.content
        return r.json()

    later = conforms("Comment", around({"body": "later %s" % uuid.uuid4().hex[:8]}))
    assert later["author"] == "[deleted]" and later["author_id"] is None, later
    reply = around({"body": "reply", "parent_id": before["id"]})
    assert reply["author"] == "[deleted]" and reply["author_id"] is None, reply
    items = {i["id"]: i for i in listing(pid)}
    assert items[later["id"]] == later and items[reply["id"]] == reply
    if racing is not None:
        wait_until(lambda: {i["id"]: i for i in listing(pid)}[racing["id"]]["author_id"] is None,
                   timeout=60, what="the racing comment forgotten")
    # the comment's event says so too
    msgs = kafka_read(COMMENTS_TOPIC, until=lambda ms: later["id"] in {
        m["key"] for m in ms if m["headers"]["ce_type"] == "encore.comment.created"},
        timeout=60)
    created = [m for m in msgs if m["key"] == later["id"]]
    assert created[0]["value"] == later
    check_record(created[0])


# ---- events --------------------------------------------------------------------------------

def check_record(m):
    """One record against schemas/events/encore.comments.comments.json."""
    from jsonschema import Draft202012Validator
    with open(ROOT / "schemas" / "events" / (COMMENTS_TOPIC + ".json"), encoding="utf-8") as f:
        v = Draft202012Validator(json.load(f))
    errors = [e.message for e in v.iter_errors(m)]
    assert not errors, errors
    h = m["headers"]
    assert h["ce_source"] == "/encore/comments"
    assert h["ce_subject"] == "comments/%s" % m["key"]


def test_writes_publish_events(people, post_id):
    a = people["author"]
    r = post_comment(a, post_id, {"body": "evented"})
    c, rid = r.json(), r.headers["X-Request-Id"]
    r = patch_comment(a, c["id"], {"body": "evented, edited"})
    changed = r.json()
    assert_problem(patch_comment(people["other"], c["id"], {"body": "no"}), 403)
    assert delete_comment(a, c["id"]).status_code == 204
    want = ["encore.comment.created", "encore.comment.updated", "encore.comment.deleted"]
    msgs = kafka_read(COMMENTS_TOPIC, until=lambda ms: len(
        [m for m in ms if m["key"] == c["id"]]) >= 3, timeout=60)
    mine = [m for m in msgs if m["key"] == c["id"]]
    assert [m["headers"]["ce_type"] for m in mine] == want
    assert mine[0]["value"] == c and mine[1]["value"] == changed
    assert mine[2]["value"] == {"id": c["id"]}
    assert mine[0]["headers"]["ce_encorerequestid"] == rid
    for m in mine:
        check_record(m)
