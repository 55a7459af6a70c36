"""Shared helpers of the content tests (test_content*.py): callers of every
role with their user ids, post factories, reading encore.content.posts.

Everything goes through the edge with real tokens; catalog_support.py's
helpers (requests, checks, the moderator) are reused."""
import json
import pathlib
import time

import pytest
import requests
from jsonschema import Draft202012Validator

from conftest import kafka_read, login, register, url
from catalog_support import ADMIN_PASSWORD, bearer, fetch, get, post

ROOT = pathlib.Path(__file__).resolve().parents[2]
POSTS = "/api/v1/posts"
TOPIC = "encore.content.posts"
# who calls, for the authorization tables: the post's author, another
# plain user, a moderator, an admin, and nobody
CALLERS = ("anonymous", "author", "other", "moderator", "admin")


def account(role="user", admin=None):
    """A fresh account with role: {id, username, token, password, h}."""
    user, pw = register()
    if role != "user":
        r = requests.patch(url("/api/v1/users/" + user["id"]), json={"role": role},
                           headers=bearer(admin))
        assert r.status_code == 200, r.text
    tok = login(user["username"], pw)
    assert tok["user"]["role"] == role
    return {"id": user["id"], "username": user["username"], "password": pw,
            "token": tok["access_token"], "h": bearer(tok["access_token"])}


@pytest.fixture(scope="session")
def people():
    """{caller: account or None}: see CALLERS."""
    admin = login("admin", ADMIN_PASSWORD)
    return {"anonymous": None, "author": account(), "other": account(),
            "moderator": account("moderator", admin["access_token"]),
            "admin": {"id": admin["user"]["id"], "username": "admin",
                      "token": admin["access_token"],
                      "h": bearer(admin["access_token"])}}


def headers_of(who):
    return who["h"] if who else {}


def post_body(**kw):
    body = {"title": "A post " + str(time.monotonic_ns()), "body": "Some *Markdown*."}
    body.update(kw)
    return body


def new_post(h, **kw):
    r = post(POSTS, post_body(**kw), h)
    assert r.status_code == 201, r.text
    return r.json()


def list_posts(params=None, h=None, limit=100):
    """Every item of GET /posts with params, page by page."""
    params = dict(params or {})
    params["limit"] = limit
    items, cursors = [], set()
    while True:
        r = get(POSTS, params=params, headers=h or {})
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"items", "next_cursor"}, page
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        assert page["next_cursor"] not in cursors, "a cursor repeated"
        cursors.add(page["next_cursor"])
        params["cursor"] = page["next_cursor"]


def poll(pred, timeout=60.0, step=0.2, what="condition"):
    """Bounded polling for what the consumers make true eventually."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


# ---- events ------------------------------------------------------------------------------

def validator():
    with open(ROOT / "schemas" / "events" / (TOPIC + ".json"), encoding="utf-8") as f:
        return Draft202012Validator(json.load(f))


def post_events(want, timeout=90, also=None):
    """The records of encore.content.posts whose key is in want (a set of
    (key, ce_type) pairs), read until every pair was seen (and also(the
    records so far) is true, when given)."""
    keys = {k for k, _ in want}
    seen, mine = set(), []

    def done(msgs):
        while done.at < len(msgs):
            m = msgs[done.at]
            done.at += 1
            if m["key"] in keys:
                mine.append(m)
                seen.add((m["key"], m["headers"].get("ce_type")))
        return want <= seen and (also is None or also(mine))
    done.at = 0

    kafka_read(TOPIC, until=done, timeout=timeout)
    assert want <= seen, "missing events: %s" % sorted(want - seen)
    assert also is None or also(mine), "the events never got there: %s" % mine
    return mine


def check_record(m, request_id=None):
    errors = sorted(validator().iter_errors(m), key=lambda e: list(e.absolute_path))
    assert not errors, [e.message for e in errors]
    h = m["headers"]
    assert h["ce_specversion"] == "1.0"
    assert h["ce_source"] == "/encore/content"
    assert h["ce_subject"] == "posts/" + m["key"]
    assert h["ce_id"] and h["ce_time"]
    if request_id is not None:
        assert h.get("ce_encorerequestid") == request_id, h


def types_of(msgs, key):
    """The ce_types of key's records in order, each event once (a record
    delivered twice has the same ce_id)."""
    out, ids = [], set()
    for m in msgs:
        if m["key"] == key and m["headers"]["ce_id"] not in ids:
            ids.add(m["headers"]["ce_id"])
            out.append(m["headers"]["ce_type"])
    return out


__all__ = ["POSTS", "TOPIC", "CALLERS", "account", "people", "headers_of", "post_body",
           "new_post", "list_posts", "poll", "post_events", "check_record", "types_of",
           "fetch"]
