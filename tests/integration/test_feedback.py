"""Feedback tickets through the edge (CONTRACT.md, Feedback): every row of
the section, who may call what (another user's ticket is 404, never 403),
every field's bad values, the whole status machine (16 from -> to pairs),
keyset paging while tickets are added, ?status=, foreign and forged
cursors, the events on encore.feedback.tickets, and a deleted account's
tickets losing their user_id."""
import base64
import json
import pathlib
import uuid

import pytest
import requests
from jsonschema import Draft202012Validator

from conftest import (PG_PORT, RUN_DIR, assert_problem, kafka_events, kafka_read_all, url,
                      wait_until, worker_request)
from catalog_support import conforms
from feedback_support import (CATEGORIES, FEEDBACK, PATH_TO, STATUSES, TOPIC, Caller,  # noqa: F401
                              allowed, callers, get, move, new_caller, new_ticket, pages,
                              patch, post, ticket_body)

ROOT = pathlib.Path(__file__).resolve().parents[2]
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def errors_of(r, status=422):
    body = assert_problem(r, status)
    return {e["field"]: e["message"] for e in body.get("errors", [])}


# ---- the contract's rows ---------------------------------------------------------------

def test_create_answers_the_open_ticket_with_its_location(callers):
    user = callers["user"]
    r = post(FEEDBACK, ticket_body(category="feature", subject="Dark mode",
                                   message="Please add a dark mode."), user)
    assert r.status_code == 201, r.text
    t = conforms("Ticket", r.json())
    assert r.headers["Location"] == FEEDBACK + "/" + t["id"]
    assert r.headers["Content-Type"].startswith("application/json")
    assert t["user_id"] == user.id
    assert (t["category"], t["subject"], t["message"]) == \
        ("feature", "Dark mode", "Please add a dark mode.")
    assert t["status"] == "open" and t["response"] is None
    assert t["created_at"] == t["updated_at"]
    r = get(r.headers["Location"], user)
    assert r.status_code == 200, r.text
    assert r.json() == t


def test_every_category_is_accepted(callers):
    for c in CATEGORIES:
        assert new_ticket(callers["user"], category=c)["category"] == c


def test_staff_answer_and_move_a_ticket(callers):
    t = new_ticket(callers["user"])
    r = patch(FEEDBACK + "/" + t["id"], {"status": "in_progress",
                                         "response": "Looking into it."}, callers["moderator"])
    assert r.status_code == 200, r.text
    t2 = conforms("Ticket", r.json())
    assert (t2["status"], t2["response"]) == ("in_progress", "Looking into it.")
    assert {k: t2[k] for k in ("id", "user_id", "category", "subject", "message",
                               "created_at")} == \
        {k: t[k] for k in ("id", "user_id", "category", "subject", "message", "created_at")}
    assert t2["updated_at"] > t["updated_at"]
    # a response alone; then cleared with null; the owner reads the answer
    r = patch(FEEDBACK + "/" + t["id"], {"response": "Fixed in 1.2."}, callers["admin"])
    assert r.status_code == 200 and r.json()["status"] == "in_progress", r.text
    assert get(FEEDBACK + "/" + t["id"], callers["user"]).json()["response"] == "Fixed in 1.2."
    r = patch(FEEDBACK + "/" + t["id"], {"response": None}, callers["moderator"])
    assert r.status_code == 200 and r.json()["response"] is None, r.text


def test_user_lists_own_tickets_staff_list_all(callers):
    mine = new_ticket(callers["user"])
    theirs = new_ticket(callers["other"])
    for who, sees, misses in (("user", mine, theirs), ("other", theirs, mine)):
        ids = [t["id"] for page in pages(callers[who], limit=100) for t in page]
        assert sees["id"] in ids and misses["id"] not in ids
        body = get(FEEDBACK + "?limit=100", callers[who]).json()
        assert all(t["user_id"] == callers[who].id for t in body["items"])
        conforms("TicketList", body)
    for staff in ("moderator", "admin"):
        ids = [t["id"] for t in get(FEEDBACK + "?limit=100", callers[staff]).json()["items"]]
        assert {mine["id"], theirs["id"]} <= set(ids)


def test_lists_are_newest_first(callers):
    made = [new_ticket(callers["user"], subject="order %d" % i)["id"] for i in range(4)]
    for who in ("user", "moderator"):
        ids = [t["id"] for t in get(FEEDBACK + "?limit=100", callers[who]).json()["items"]]
        assert [i for i in ids if i in made] == made[::-1]
        assert ids.index(made[-1]) == 0     # nobody else's test writes between
    items = get(FEEDBACK + "?limit=100", callers["user"]).json()["items"]
    keys = [(t["created_at"], t["id"]) for t in items]
    assert keys == sorted(keys, reverse=True)


def test_status_filter_for_owner_and_staff(callers):
    user = callers["user"]
    staff = callers["moderator"]
    made = {s: new_ticket(user, subject="filter " + s)["id"] for s in STATUSES}
    for s, tid in made.items():
        move(tid, PATH_TO[s], staff)
    for s in STATUSES:
        for who in (user, staff, callers["admin"]):
            got = [t for page in pages(who, {"status": s}, limit=50) for t in page]
            assert all(t["status"] == s for t in got), s
            assert made[s] in [t["id"] for t in got]
            assert not (set(made.values()) - {made[s]}) & {t["id"] for t in got}
    # another user's tickets never show in their filtered list
    got = [t["id"] for t in get(FEEDBACK + "?status=open&limit=100", callers["other"]).json()["items"]]
    assert made["open"] not in got


# ---- authorization -------------------------------------------------------------------------

CALLERS = ("anonymous", "user", "other", "moderator", "admin")

# route -> caller -> status; the ticket is the user's own
TABLE = {
    "create": {"anonymous": 401, "user": 201, "other": 201, "moderator": 201, "admin": 201},
    "list":   {"anonymous": 401, "user": 200, "other": 200, "moderator": 200, "admin": 200},
    "get":    {"anonymous": 401, "user": 200, "other": 404, "moderator": 200, "admin": 200},
    "patch":  {"anonymous": 401, "user": 403, "other": 403, "moderator": 200, "admin": 200},
}


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("route", sorted(TABLE))
def test_authorization_table(callers, route, who):
    t = new_ticket(callers["user"])
    c = callers[who]
    if route == "create":
        r = post(FEEDBACK, ticket_body(), c)
    elif route == "list":
        r = get(FEEDBACK, c)
    elif route == "get":
        r = get(FEEDBACK + "/" + t["id"], c)
    else:
        r = patch(FEEDBACK + "/" + t["id"], {"response": "seen"}, c)
    want = TABLE[route][who]
    assert r.status_code == want, (route, who, r.status_code, r.text)
    if want == 401:
        assert_problem(r, 401)
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r.headers
    elif want == 404:
        # another user's ticket is not even admitted to exist
        assert assert_problem(r, 404)["detail"] == "no such ticket"
    elif want == 403:
        assert_problem(r, 403)
    # what a refused caller could not change is unchanged
    if route == "patch" and want != 200:
        assert get(FEEDBACK + "/" + t["id"], callers["user"]).json() == t


def test_other_users_ticket_is_404_like_an_unknown_one(callers):
    t = new_ticket(callers["user"])
    seen = get(FEEDBACK + "/" + t["id"], callers["other"])
    unknown = get(FEEDBACK + "/" + str(uuid.uuid4()), callers["other"])
    assert_problem(seen, 404)
    assert_problem(unknown, 404)
    assert seen.json()["detail"] == unknown.json()["detail"] == "no such ticket"


@pytest.mark.parametrize("tid", ["not-a-uuid", str(uuid.uuid4()), "00000000-0000-0000-0000-00000000000g"])
def test_unknown_ids_are_404(callers, tid):
    for who in ("user", "moderator"):
        assert_problem(get(FEEDBACK + "/" + tid, callers[who]), 404)
    assert_problem(patch(FEEDBACK + "/" + tid, {"status": "closed"}, callers["moderator"]), 404)


def test_staff_route_checks_role_before_body(callers):
    # a user's PATCH is 403 whatever the body (route, credentials, body)
    t = new_ticket(callers["user"])
    r = requests.patch(url(FEEDBACK + "/" + t["id"]), data="{not json",
                       headers=dict(callers["user"].headers, **{"Content-Type": "application/json"}))
    assert_problem(r, 403)
    r = requests.post(url(FEEDBACK), data="{not json",
                      headers={"Content-Type": "application/json"})
    assert_problem(r, 401)


# ---- bad values ------------------------------------------------------------------------------

WRONG_TYPES = [None, 1, 1.5, True, [], {}, ["bug"]]


@pytest.mark.parametrize("field", ["category", "subject", "message"])
@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_create_refuses_wrong_types(callers, field, value):
    errs = errors_of(post(FEEDBACK, ticket_body(**{field: value}), callers["user"]))
    assert set(errs) == {field}, errs


@pytest.mark.parametrize("field", ["category", "subject", "message"])
def test_create_requires_each_field(callers, field):
    body = ticket_body()
    del body[field]
    errs = errors_of(post(FEEDBACK, body, callers["user"]))
    assert set(errs) == {field}, errs
    errs = errors_of(post(FEEDBACK, {}, callers["user"]))
    assert set(errs) == {"category", "subject", "message"}, errs


@pytest.mark.parametrize("field,bound", [("subject", 200), ("message", 10000)])
def test_lengths_at_and_past_the_bounds(callers, field, bound):
    user = callers["user"]
    for text in ("x" * bound, "\U0001F3B5" * bound, "é" * bound, "x"):
        t = new_ticket(user, **{field: text})
        assert t[field] == text
    for text in ("", "x" * (bound + 1), "\U0001F3B5" * (bound + 1)):
        errs = errors_of(post(FEEDBACK, ticket_body(**{field: text}), user))
        assert set(errs) == {field}, (len(text), errs)


@pytest.mark.parametrize("blank", [" ", "   ", "\n", "\t\r\n\v\f "])
def test_create_refuses_blank_text(callers, blank):
    user = callers["user"]
    for field in ("subject", "message"):
        errs = errors_of(post(FEEDBACK, ticket_body(**{field: blank}), user))
        assert errs == {field: "must not be blank"}, errs
    errs = errors_of(post(FEEDBACK, ticket_body(subject=blank, message="\n"), user))
    assert set(errs) == {"subject", "message"}, errs
    # text around the white space is text
    assert new_ticket(user, subject=" x ", message="\n.\n")["subject"] == " x "


@pytest.mark.parametrize("category", ["Bug", "bugs", "", "question", " bug"])
def test_unknown_category(callers, category):
    errs = errors_of(post(FEEDBACK, ticket_body(category=category), callers["user"]))
    assert set(errs) == {"category"}, errs


@pytest.mark.parametrize("member", [{"color": "red"}, {"Subject": "x"}, {"id": str(uuid.uuid4())},
                                    {"created_at": "2020-01-01T00:00:00Z"}])
def test_create_refuses_unknown_and_read_only_members(callers, member):
    errs = errors_of(post(FEEDBACK, ticket_body(**member), callers["user"]))
    assert set(errs) == set(member), errs


def test_create_cannot_choose_its_user_status_or_response(callers):
    user = callers["user"]
    errs = errors_of(post(FEEDBACK, ticket_body(user_id=callers["other"].id), user))
    assert set(errs) == {"user_id"}, errs
    errs = errors_of(post(FEEDBACK, ticket_body(status="closed"), user))
    assert set(errs) == {"status"}, errs
    errs = errors_of(post(FEEDBACK, ticket_body(response="answered already"), user))
    assert set(errs) == {"response"}, errs
    errs = errors_of(post(FEEDBACK, ticket_body(status="pending"), user))
    assert set(errs) == {"status"}, errs


def test_create_collects_every_error_at_once(callers):
    errs = errors_of(post(FEEDBACK, {"category": "nope", "subject": "", "message": 7,
                                     "extra": 1}, callers["user"]))
    assert set(errs) == {"category", "subject", "message", "extra"}, errs


PATCH_BAD = ([({"status": v}, "status") for v in ("reopened", "", "OPEN", None, 3, True, ["open"])]
             + [({"response": v}, "response")
                for v in (3, True, [], {}, "x" * 10001, "", " ", "\t\r\n\v\f ")]
             + [({}, ""), ({"subject": "changed"}, "subject"),
                ({"category": "other"}, "category"), ({"message": "changed"}, "message"),
                ({"user_id": None}, "user_id"), ({"id": str(uuid.uuid4())}, "id"),
                ({"status": "open", "unknown": 1}, "unknown"),
                ({"created_at": "2020-01-01T00:00:00Z"}, "created_at")])


@pytest.mark.parametrize("body,field", PATCH_BAD, ids=[repr(b)[:40] for b, _ in PATCH_BAD])
def test_patch_refuses_bad_values(callers, body, field):
    t = new_ticket(callers["user"])
    r = patch(FEEDBACK + "/" + t["id"], body, callers["moderator"])
    errs = errors_of(r)
    assert set(errs) == {field}, (body, errs)
    assert get(FEEDBACK + "/" + t["id"], callers["user"]).json() == t


def test_patch_response_at_its_bound(callers):
    t = new_ticket(callers["user"])
    for text in ("x", " x\n", "\U0001F3B5" * 10000):
        r = patch(FEEDBACK + "/" + t["id"], {"response": text}, callers["moderator"])
        assert r.status_code == 200, r.text
        assert r.json()["response"] == text


@pytest.mark.parametrize("method,path", [("POST", FEEDBACK), ("PATCH", FEEDBACK + "/{id}")])
def test_malformed_and_non_json_bodies(callers, method, path):
    t = new_ticket(callers["user"])
    p = url(path.replace("{id}", t["id"]))
    staff = callers["moderator"].headers
    cases = [("{\"category\": ", "application/json", 400),
             ("[1, 2]", "application/json", 400),
             ("\"text\"", "application/json", 400),
             ("category=bug", "application/x-www-form-urlencoded", 415),
             ("{\"status\": \"closed\"}", "text/plain", 415)]
    for data, ctype, status in cases:
        r = requests.request(method, p, data=data, headers=dict(staff, **{"Content-Type": ctype}))
        assert_problem(r, status)
    assert get(FEEDBACK + "/" + t["id"], callers["user"]).json() == t


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "limit=-1", "status=reopened",
                                   "status=OPEN", "status="])
def test_list_refuses_bad_query(callers, query):
    for who in ("user", "moderator"):
        assert_problem(get(FEEDBACK + "?" + query, callers[who]), 422)


# ---- the status machine ---------------------------------------------------------------------

@pytest.mark.parametrize("src", STATUSES)
@pytest.mark.parametrize("dst", STATUSES)
def test_transition_matrix(callers, src, dst):
    staff = callers["moderator"]
    t = new_ticket(callers["user"])
    t = move(t["id"], PATH_TO[src], staff) or t
    r = patch(FEEDBACK + "/" + t["id"], {"status": dst, "response": "%s -> %s" % (src, dst)}, staff)
    if src == dst == "closed":
        # closed is final: not even a response (test_closed_is_final)
        errs = errors_of(r)
        assert set(errs) == {"response"} and "closed" in errs["response"], errs
        assert get(FEEDBACK + "/" + t["id"], callers["user"]).json() == t
    elif allowed(src, dst):
        assert r.status_code == 200, (src, dst, r.text)
        assert r.json()["status"] == dst
        assert r.json()["response"] == "%s -> %s" % (src, dst)
    else:
        errs = errors_of(r)
        assert set(errs) == {"status"}, errs
        assert src in errs["status"] and dst in errs["status"], errs
        assert errs["status"].index(src) < errs["status"].rindex(dst), errs
        # nothing of the refused patch was applied
        assert get(FEEDBACK + "/" + t["id"], callers["user"]).json() == t


def test_closed_is_final(callers):
    """Any PATCH of a closed ticket is 422, naming the status when it
    names one and the response otherwise, and changes nothing: no row,
    no event."""
    staff = callers["admin"]
    t = new_ticket(callers["user"])
    closed = move(t["id"], PATH_TO["closed"], staff)
    for body, field in (({"status": "open"}, "status"), ({"status": "resolved"}, "status"),
                        ({"status": "closed"}, "status"),
                        ({"response": "closed, with thanks"}, "response"),
                        ({"response": None}, "status"),     # already none: nothing to change
                        ({"status": "closed", "response": "x"}, "response"),
                        ({"status": "in_progress", "response": "x"}, "status")):
        errs = errors_of(patch(FEEDBACK + "/" + t["id"], body, staff))
        assert set(errs) == {field} and "closed" in errs[field], (body, errs)
        assert get(FEEDBACK + "/" + t["id"], callers["user"]).json() == closed
    # a closed ticket's response is final too
    t = new_ticket(callers["user"])
    move(t["id"], PATH_TO["resolved"], staff)
    r = patch(FEEDBACK + "/" + t["id"], {"status": "closed", "response": "done"}, staff)
    assert r.status_code == 200, r.text
    closed = r.json()
    for body in ({"response": None}, {"response": "changed"}, {"response": "done"}):
        errs = errors_of(patch(FEEDBACK + "/" + t["id"], body, staff))
        assert set(errs) == {"response" if body["response"] != "done" else "status"}, errs
        assert get(FEEDBACK + "/" + t["id"], callers["user"]).json() == closed
    # the refused patches published nothing: the moves' events and no more
    def updates(ms):
        seen = {}
        for m in ms:
            if m["headers"]["ce_type"] == "encore.ticket.updated":
                seen.setdefault(m["headers"]["ce_id"], m["value"]["status"])
        return list(seen.values())

    msgs = kafka_events(TOPIC, {(t["id"], "encore.ticket.updated")},
                        also=lambda ms: len(updates(ms)) >= 3)
    assert updates(msgs) == ["in_progress", "resolved", "closed"], msgs


def test_a_patch_that_changes_nothing_keeps_updated_at(callers):
    staff = callers["moderator"]
    t = new_ticket(callers["user"])
    for body in ({"status": "open"}, {"response": None}, {"status": "open", "response": None}):
        r = patch(FEEDBACK + "/" + t["id"], body, staff)
        assert r.status_code == 200, r.text
        assert r.json() == t
    r = patch(FEEDBACK + "/" + t["id"], {"response": "seen"}, staff)
    assert r.status_code == 200 and r.json()["updated_at"] > t["updated_at"], r.text
    t = r.json()
    r = patch(FEEDBACK + "/" + t["id"], {"status": "open", "response": "seen"}, staff)
    assert r.status_code == 200 and r.json() == t, r.text


def test_concurrent_moves_follow_the_machine(callers):
    """Staff racing each other on one ticket: whatever wins, every change
    the ticket went through (its updated events, in order on its key) is
    a move the machine allows."""
    import random
    import threading

    staff = callers["moderator"]
    t = new_ticket(callers["user"])
    rng = random.Random(8)
    targets = [rng.choice(STATUSES) for _ in range(24)]
    answers = []

    def send(status):
        r = patch(FEEDBACK + "/" + t["id"], {"status": status}, staff)
        answers.append((status, r.status_code))

    for i in range(0, len(targets), 6):
        threads = [threading.Thread(target=send, args=(x,)) for x in targets[i:i + 6]]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert {code for _, code in answers} <= {200, 422}, answers
    ok = sum(1 for _, code in answers if code == 200)
    assert ok >= 1, answers
    final = get(FEEDBACK + "/" + t["id"], staff).json()

    def updates():
        # every 200 published one event: all of them, in order on the key
        # (on a fresh stack the topic may not exist yet: the relay's first
        # event creates it)
        m = [x for x in kafka_read_all(TOPIC, missing_ok=True) if x["key"] == t["id"]]
        ids = {x["headers"]["ce_id"] for x in m
               if x["headers"]["ce_type"] == "encore.ticket.updated"}
        return m if len(ids) >= ok else None

    msgs = wait_until(updates, timeout=90, what="every update's event")
    seen, path = set(), ["open"]
    for m in msgs:
        if m["headers"]["ce_type"] != "encore.ticket.updated" or m["headers"]["ce_id"] in seen:
            continue
        seen.add(m["headers"]["ce_id"])
        path.append(m["value"]["status"])
    assert len(path) - 1 == ok, (path, answers)
    for src, dst in zip(path, path[1:]):
        assert allowed(src, dst), path
    assert path[-1] == final["status"]


def test_the_machine_holds_in_the_database():
    """No path around the worker skips it: the feedback role's own UPDATE
    of a closed ticket is refused by the schema."""
    import subprocess

    password = (RUN_DIR / "secrets" / "pg-feedback.password").read_text().strip()

    def psql(sql):
        return subprocess.run(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "encore_feedback",
             "-d", "encore", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql],
            env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)

    r = psql("BEGIN; INSERT INTO tickets (category, subject, message, status) "
             "VALUES ('bug', 's', 'm', 'closed'); ROLLBACK")
    assert r.returncode != 0 and "new ticket is open" in r.stderr, r.stderr
    r = psql("BEGIN; INSERT INTO tickets (id, category, subject, message) VALUES "
             "('6f1c1d6e-0000-4000-8000-000000000001', 'bug', 's', 'm'); "
             "UPDATE tickets SET status = 'in_progress' WHERE id = '6f1c1d6e-0000-4000-8000-000000000001'; "
             "UPDATE tickets SET status = 'resolved' WHERE id = '6f1c1d6e-0000-4000-8000-000000000001'; "
             "UPDATE tickets SET status = 'closed' WHERE id = '6f1c1d6e-0000-4000-8000-000000000001'; "
             "UPDATE tickets SET status = 'open' WHERE id = '6f1c1d6e-0000-4000-8000-000000000001'; "
             "ROLLBACK")
    assert r.returncode != 0 and "from closed to open" in r.stderr, r.stderr
    # closed is final: not its response, nor its status left as it is
    closed = ("BEGIN; INSERT INTO tickets (id, category, subject, message) VALUES "
              "('6f1c1d6e-0000-4000-8000-000000000002', 'bug', 's', 'm'); "
              "UPDATE tickets SET status = 'in_progress' WHERE id = '6f1c1d6e-0000-4000-8000-000000000002'; "
              "UPDATE tickets SET status = 'resolved' WHERE id = '6f1c1d6e-0000-4000-8000-000000000002'; "
              "UPDATE tickets SET status = 'closed' WHERE id = '6f1c1d6e-0000-4000-8000-000000000002'; ")
    r = psql(closed + "UPDATE tickets SET response = 'late' "
             "WHERE id = '6f1c1d6e-0000-4000-8000-000000000002'; ROLLBACK")
    assert r.returncode != 0 and "closed" in r.stderr, r.stderr
    r = psql(closed + "UPDATE tickets SET status = 'closed' "
             "WHERE id = '6f1c1d6e-0000-4000-8000-000000000002'; ROLLBACK")
    assert r.returncode != 0 and "closed" in r.stderr, r.stderr
    # the consumer's forgetting a user still reaches a closed ticket
    r = psql(closed + "UPDATE tickets SET user_id = NULL "
             "WHERE id = '6f1c1d6e-0000-4000-8000-000000000002'; ROLLBACK")
    assert r.returncode == 0, r.stderr


# ---- paging ------------------------------------------------------------------------------------

def test_paging_has_no_duplicates_or_gaps_while_tickets_are_added(callers):
    author = new_caller()
    before = [new_ticket(author, subject="page %d" % i)["id"] for i in range(10)]
    added = []

    def add():
        added.append(new_ticket(author, subject="added")["id"])

    for who, query in ((author, {}), (author, {"status": "open"}),
                       (callers["moderator"], {"status": "open"}),
                       (callers["moderator"], {})):
        def seen_all(got):
            return set(before) <= {t["id"] for page in got for t in page}
        got = [t["id"] for page in pages(who, query, limit=3, between=add, stop=seen_all)
               for t in page]
        assert len(got) == len(set(got)), "duplicates across pages"
        # every ticket there before the first page, newest first, none missing
        assert [i for i in got if i in before] == before[::-1]
        # those added meanwhile are newer than the first page: in no later one
        assert added and not set(got) & set(added)
        before = before + added
        added = []


def test_staff_paging_over_everybody(callers):
    made = [new_ticket(callers["other"], subject="staff page %d" % i)["id"] for i in range(5)]
    got = [t["id"] for page in pages(callers["admin"], limit=2,
                                     stop=lambda got: len(got) >= 4) for t in page]
    assert len(got) == len(set(got))
    assert [i for i in got if i in made] == made[::-1]


def _cursor(caller, query=""):
    body = get(FEEDBACK + "?limit=1" + query, caller).json()
    assert body["next_cursor"], body
    return body["next_cursor"]


def test_forged_and_foreign_cursors_are_400(callers):
    user, other, staff = callers["user"], callers["other"], callers["moderator"]
    for c in (user, other):
        new_ticket(c)
        new_ticket(c)
    mine = _cursor(user)
    raw = base64.urlsafe_b64decode(mine + "=" * (-len(mine) % 4))
    flipped = base64.urlsafe_b64encode(raw[:-1] + bytes([raw[-1] ^ 1])).rstrip(b"=").decode()
    assert get(FEEDBACK + "?limit=1&cursor=" + mine, user).status_code == 200
    for caller, cursor, query in (
            (user, "not-a-cursor", ""), (user, flipped, ""),
            (user, mine + "A", ""),
            (other, mine, ""),                      # another user's cursor
            (staff, mine, ""),                      # the owner list's, to staff
            (user, mine, "&status=open"),           # other filters
            (user, _cursor(staff), ""),             # staff's, to a user
            (staff, _cursor(staff, "&status=open"), "&status=closed"),
            (staff, _cursor(staff, "&status=open"), "")):
        assert_problem(get(FEEDBACK + "?limit=1&cursor=" + cursor + query, caller), 400)


# ---- events -------------------------------------------------------------------------------------

def validator():
    with open(ROOT / "schemas" / "events" / (TOPIC + ".json"), encoding="utf-8") as f:
        return Draft202012Validator(json.load(f))


def events_of(want, timeout=90):
    return kafka_events(TOPIC, want, timeout)


def check_record(m, request_id=None):
    errors = sorted(validator().iter_errors(m), key=lambda e: list(e.absolute_path))
    assert not errors, [e.message for e in errors]
    h = m["headers"]
    assert h["ce_specversion"] == "1.0" and h["ce_source"] == "/encore/feedback"
    assert h["ce_subject"] == "tickets/" + m["key"]
    if request_id is not None:
        assert h.get("ce_encorerequestid") == request_id, h


def test_create_and_update_publish_the_ticket(callers):
    r = post(FEEDBACK, ticket_body(), callers["user"])
    assert r.status_code == 201, r.text
    t, rid_c = r.json(), r.headers["X-Request-Id"]
    r = patch(FEEDBACK + "/" + t["id"], {"status": "in_progress", "response": "on it"},
              callers["moderator"])
    assert r.status_code == 200, r.text
    t2, rid_u = r.json(), r.headers["X-Request-Id"]
    # a refused move publishes nothing
    assert_problem(patch(FEEDBACK + "/" + t["id"], {"status": "open"}, callers["moderator"]), 422)
    msgs = events_of({(t["id"], "encore.ticket.created"), (t["id"], "encore.ticket.updated")})
    created = [m for m in msgs if m["headers"]["ce_type"] == "encore.ticket.created"]
    updated = [m for m in msgs if m["headers"]["ce_type"] == "encore.ticket.updated"]
    assert len({m["headers"]["ce_id"] for m in created}) == 1
    assert len({m["headers"]["ce_id"] for m in updated}) == 1
    assert created[0]["value"] == t and updated[0]["value"] == t2
    assert msgs.index(created[0]) < msgs.index(updated[0])
    check_record(created[0], rid_c)
    check_record(updated[0], rid_u)


def test_deleted_account_leaves_its_tickets_without_user_id(callers):
    gone = new_caller()
    kept = new_ticket(callers["other"])
    tickets = [new_ticket(gone, subject="before I go %d" % i) for i in range(2)]
    r = requests.delete(url("/api/v1/users/me"), json={"password": gone.password},
                        headers=gone.headers)
    assert r.status_code == 204, r.text
    staff = callers["moderator"]

    def forgotten():
        got = [get(FEEDBACK + "/" + t["id"], staff).json() for t in tickets]
        return got if all(g["user_id"] is None for g in got) else None

    got = wait_until(forgotten, timeout=90, what="the deleted user's tickets to lose user_id")
    for before, after in zip(tickets, got):
        conforms("Ticket", after)
        assert {k: v for k, v in after.items() if k not in ("user_id", "updated_at")} == \
            {k: v for k, v in before.items() if k not in ("user_id", "updated_at")}
    assert get(FEEDBACK + "/" + kept["id"], staff).json()["user_id"] == callers["other"].id
    # each changed ticket says so on its topic
    msgs = events_of({(t["id"], "encore.ticket.updated") for t in tickets})
    for t in tickets:
        u = [m for m in msgs if m["key"] == t["id"]
             and m["headers"]["ce_type"] == "encore.ticket.updated"]
        assert u[-1]["value"]["user_id"] is None
        check_record(u[-1])
    # and they still list for staff, in status and time order
    ids = [x["id"] for x in get(FEEDBACK + "?limit=100", staff).json()["items"]]
    assert tickets[1]["id"] in ids


def test_a_deleted_users_later_tickets_have_no_user_id(callers):
    """The edge refuses a deleted user's access token once the revocation
    reached it (test_revocation.py), but a request may race it, and a
    token's identity may reach the worker around the edge: a ticket opened
    with it after the deletion was applied has no user_id at once, and one
    racing the deletion's event loses it once the event is applied."""
    gone = new_caller()
    before = new_ticket(gone)
    r = requests.delete(url("/api/v1/users/me"), json={"password": gone.password},
                        headers=gone.headers)
    assert r.status_code == 204, r.text
    staff = callers["moderator"]
    # racing the event (and the edge's revocation)
    r = post(FEEDBACK, ticket_body(), gone)
    assert r.status_code in (201, 401), r.text
    racing = r.json() if r.status_code == 201 else None
    wait_until(lambda: get(FEEDBACK + "/" + before["id"], staff).json()["user_id"] is None,
               timeout=90, what="the deletion applied")
    wait_until(lambda: "revoked (deleted)" in post(FEEDBACK, ticket_body(), gone).text,
               timeout=30, what="the edge refusing the token")
    # the worker, reached with the identity the token carried
    r = worker_request("feedback", "POST", FEEDBACK, body=ticket_body(subject="after I went"),
                       headers={"X-Encore-User-Id": gone.id, "X-Encore-User-Role": "user",
                                "X-Encore-User-Name": gone.username})
    assert r.status_code == 201, r.content
    later = conforms("Ticket", r.json())
    assert later["user_id"] is None, later
    assert get(FEEDBACK + "/" + later["id"], staff).json() == later
    if racing is not None:
        wait_until(lambda: get(FEEDBACK + "/" + racing["id"], staff).json()["user_id"] is None,
                   timeout=90, what="the racing ticket forgotten")
    msgs = events_of({(later["id"], "encore.ticket.created")})
    created = [m for m in msgs if m["key"] == later["id"]]
    assert created[0]["value"] == later
    check_record(created[0])
