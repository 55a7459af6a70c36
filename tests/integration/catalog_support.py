"""Shared helpers of the catalog tests (test_catalog*.py): callers of every
role, entity factories, and checks against the OpenAPI description.

Everything goes through the edge with real tokens: the moderator is a
registered user the admin promoted (PATCH /api/v1/users/{id}), logged in
again so the token carries the role."""
import os
import pathlib
import sys
import threading
import uuid

import pytest
import requests

from conftest import account_with_role, assert_problem, login, url

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "api"))

import openapi_support  # noqa: E402  (tests/unit/api: the spec's helpers)

ADMIN_PASSWORD = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")
ROLES = ("anonymous", "user", "moderator", "admin")


def hexid(n=10):
    return uuid.uuid4().hex[:n]


def bearer(token):
    return {"Authorization": "Bearer " + token} if token else {}


@pytest.fixture(scope="session")
def tokens():
    """{role: access token}, None for anonymous."""
    admin = login("admin", ADMIN_PASSWORD)["access_token"]

    plain = account_with_role()[2]["access_token"]
    moderator = account_with_role("moderator", admin)[2]["access_token"]
    return {"anonymous": None, "user": plain, "moderator": moderator, "admin": admin}


@pytest.fixture(scope="session")
def mod(tokens):
    """The moderator's Authorization header: the usual author of test data."""
    return bearer(tokens["moderator"])


# ---- requests ---------------------------------------------------------------------

def get(path, **kw):
    return requests.get(url(path), **kw)


def post(path, body, headers=None, **kw):
    return requests.post(url(path), json=body, headers=headers or {}, **kw)


def patch(path, body, headers=None, **kw):
    return requests.patch(url(path), json=body, headers=headers or {}, **kw)


def delete(path, headers=None, **kw):
    return requests.delete(url(path), headers=headers or {}, **kw)


# ---- factories ------------------------------------------------------------------------

def artist_body(**kw):
    h = hexid()
    body = {"name": "Artist " + h, "slug": "artist-" + h}
    body.update(kw)
    return body


def new_artist(headers, **kw):
    r = post("/api/v1/artists", artist_body(**kw), headers)
    assert r.status_code == 201, r.text
    return r.json()


def new_album(headers, artist_id, **kw):
    body = {"artist_id": artist_id, "title": "Album " + hexid(), "kind": "album"}
    body.update(kw)
    r = post("/api/v1/albums", body, headers)
    assert r.status_code == 201, r.text
    return r.json()


def new_track(headers, album_id, position, **kw):
    body = {"album_id": album_id, "title": "Track %d %s" % (position, hexid()),
            "position": position, "duration_ms": 180000}
    body.update(kw)
    r = post("/api/v1/tracks", body, headers)
    assert r.status_code == 201, r.text
    return r.json()


# ---- checks ------------------------------------------------------------------------------

def conforms(component, instance):
    """instance is valid against components/schemas/<component>."""
    errors = openapi_support.schema_errors(openapi_support.component_validator(component),
                                           instance)
    assert not errors, "%s: %s" % (component, [e.message for e in errors])
    return instance


def field_root(name):
    """"genres[3]" -> "genres": an item's error names its array."""
    return name.split("[", 1)[0]


def assert_invalid(r, *fields):
    """A 422 whose errors[] names exactly these fields (items of an array
    count as the array), each at least once."""
    body = assert_problem(r, 422)
    conforms("ValidationProblem", body)
    named = {field_root(e["field"]) for e in body["errors"]}
    assert named == set(fields), (sorted(named), sorted(fields), body)
    return body


def assert_field_problem(r, status, field):
    body = assert_problem(r, status)
    assert any(e["field"] == field for e in body.get("errors", [])), body
    return body


def fetch(path):
    r = get(path)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def list_all(path, params=None, limit=100, headers=None):
    """Every item of a list, page by page (as the caller of headers);
    checks each page's envelope."""
    params = dict(params or {})
    params["limit"] = limit
    items, seen_cursors = [], set()
    while True:
        r = get(path, params=params, headers=headers or {})
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"items", "next_cursor"}, page
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        assert page["next_cursor"] not in seen_cursors, "a cursor repeated"
        seen_cursors.add(page["next_cursor"])
        params["cursor"] = page["next_cursor"]


# ---- races ------------------------------------------------------------------------------------

def race_delete(h, parent_path, creates, rounds=15):
    """Deletes a parent while threads keep creating children under it:
    the delete is 204 and never a 500, each create is 201 or 422 (no such
    parent), and every child a create answered 201 for is gone with it.
    Returns the children made: [(Location, entity)]."""
    made = []
    for _ in range(rounds):
        path, makers = parent_path(), creates()
        results, stop, started = [], threading.Event(), threading.Semaphore(0)

        def run(make):
            s = requests.Session()
            first = True
            try:
                while not stop.is_set():
                    results.append(make(s))
                    if first:
                        started.release()
                        first = False
            finally:
                if first:
                    started.release()       # failed: the main thread sees why

        threads = [threading.Thread(target=run, args=(m,)) for m in makers]
        for t in threads:
            t.start()
        for _ in threads:
            started.acquire()
        assert len(results) >= len(threads), "a creating thread failed"
        r = delete(path, h)
        stop.set()
        for t in threads:
            t.join(60)
        assert r.status_code == 204, (r.status_code, r.text)
        for c in results:
            assert c.status_code in (201, 422), (c.status_code, c.text)
            if c.status_code == 201:
                loc = c.headers["Location"]
                assert_problem(get(loc), 404)
                made.append((loc, c.json()))
        assert_problem(get(path), 404)
    return made
