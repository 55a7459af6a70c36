"""Shared helpers of the feedback tests (test_feedback*.py): callers of
every kind with their ids, ticket factories, the status machine as the
contract states it, and the ticket's event topic.

Everything goes through the edge with real tokens: the moderator is a
registered user the admin promoted, logged in again so that the token
carries the role."""
import os

import pytest
import requests

from conftest import account_with_role, login, url
from catalog_support import bearer

ADMIN_PASSWORD = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")
TOPIC = "encore.feedback.tickets"
FEEDBACK = "/api/v1/feedback"
CATEGORIES = ("bug", "feature", "content", "other")
STATUSES = ("open", "in_progress", "resolved", "closed")

# CONTRACT.md, Feedback: open -> in_progress -> resolved -> closed, resolved
# may return to in_progress, closed is final; staying put is no move
MOVES = {("open", "in_progress"), ("in_progress", "resolved"),
         ("resolved", "closed"), ("resolved", "in_progress")}
# the allowed moves that bring a new (open) ticket to each status
PATH_TO = {"open": [], "in_progress": ["in_progress"],
           "resolved": ["in_progress", "resolved"],
           "closed": ["in_progress", "resolved", "closed"]}


def allowed(src, dst):
    return src == dst or (src, dst) in MOVES


class Caller:
    """A signed-in account (or anonymous: no token, no id)."""

    def __init__(self, token=None, uid=None, username=None, password=None):
        self.token, self.id, self.username, self.password = token, uid, username, password

    @property
    def headers(self):
        return bearer(self.token)


def new_caller(role="user", admin_token=None):
    user, pw, session = account_with_role(role, admin_token)
    return Caller(session["access_token"], user["id"], user["username"], pw)


@pytest.fixture(scope="session")
def callers():
    """{kind: Caller}: anonymous, user, other (a second user), moderator,
    admin (the stack's admin account)."""
    admin = login("admin", ADMIN_PASSWORD)
    return {"anonymous": Caller(),
            "user": new_caller(),
            "other": new_caller(),
            "moderator": new_caller("moderator", admin["access_token"]),
            "admin": Caller(admin["access_token"], admin["user"]["id"], "admin",
                            ADMIN_PASSWORD)}


# ---- requests ---------------------------------------------------------------------

def get(path, caller, **kw):
    return requests.get(url(path), headers=caller.headers, **kw)


def post(path, body, caller, **kw):
    return requests.post(url(path), json=body, headers=caller.headers, **kw)


def patch(path, body, caller, **kw):
    return requests.patch(url(path), json=body, headers=caller.headers, **kw)


def ticket_body(**kw):
    body = {"category": "bug", "subject": "The player stops",
            "message": "After the third track the player stops."}
    body.update(kw)
    return body


def new_ticket(caller, **kw):
    r = post(FEEDBACK, ticket_body(**kw), caller)
    assert r.status_code == 201, r.text
    return r.json()


def move(ticket_id, statuses, staff):
    """Patches the ticket through statuses (each must be allowed)."""
    t = None
    for s in statuses:
        r = patch(FEEDBACK + "/" + ticket_id, {"status": s}, staff)
        assert r.status_code == 200, (s, r.text)
        t = r.json()
        assert t["status"] == s
    return t


def pages(caller, query=None, limit=3, between=None, stop=None):
    """The pages of GET /feedback?<query> (limit per page), calling
    between() after each page, up to the last or until stop(pages so
    far) is true: the list of pages' items."""
    out, cursor = [], None
    while True:
        params = {"limit": limit}
        if query:
            params.update(query)
        if cursor:
            params["cursor"] = cursor
        r = requests.get(url(FEEDBACK), params=params, headers=caller.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        out.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None or (stop and stop(out)):
            return out
        if between:
            between()
