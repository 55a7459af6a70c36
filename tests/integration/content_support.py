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

from conftest import account_with_role, kafka_events, login, wait_until
from catalog_support import ADMIN_PASSWORD, bearer, fetch, list_all, post

ROOT = pathlib.Path(__file__).resolve().parents[2]
POSTS = "/api/v1/posts"
TOPIC = "encore.content.posts"
# who calls, for the authorization tables: the post's author, another
# plain user, a moderator, an admin, and nobody
CALLERS = ("anonymous", "author", "other", "moderator", "admin")


def account(role="user", admin=None):
    """A fresh account with role: {id, username, token, password, h}."""
    user, pw, tok = account_with_role(role, admin)
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
    """Every item of GET /posts with params, page by page, as h's caller."""
    return list_all(POSTS, params, limit, h)


def poll(pred, what="condition"):
    """Bounded polling for what the consumers make true eventually."""
    return wait_until(pred, timeout=60.0, what=what)


# ---- events ------------------------------------------------------------------------------

def validator():
    with open(ROOT / "schemas" / "events" / (TOPIC + ".json"), encoding="utf-8") as f:
        return Draft202012Validator(json.load(f))


def post_events(want, timeout=90, also=None):
    """The records of encore.content.posts with these (key, ce_type) pairs
    (conftest.kafka_events)."""
    return kafka_events(TOPIC, want, timeout, also)


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
