"""The per-user limit of chat questions at the edge (conf/limits.conf:
limit_req keyed on the verified token's subject, $encore_jwt_sub, which
the jwt module sets in the preaccess phase, before limit_req)."""
import os
import re
import signal
import time
import uuid

import requests

from conftest import assert_problem, url, wait_until
from chat_support import (SESSIONS, callers, messages_path, new_caller,  # noqa: F401
                          provider)
from test_routes import contract_nginx  # noqa: F401 (a fixture)


def test_questions_are_limited_per_user(contract_nginx, callers):  # noqa: F811
    """On a private edge with the contract nginx's 5r/s burst 10 in every
    zone: one user's questions are refused with 429 once over the limit,
    while another user's still pass; a request without a verified user is
    never counted (401 from the route's policy)."""
    edge, _ = contract_nginx
    a, b = new_caller(), new_caller()
    path = edge + messages_path(uuid.uuid4())
    statuses, limited = [], None
    while limited is None and len(statuses) < 300:
        # a session that does not exist: the worker answers 404 at once
        r = requests.post(path, json={"content": "hi"}, headers=a.headers)
        statuses.append(r.status_code)
        if r.status_code == 429:
            limited = r
    assert limited is not None, statuses
    assert 429 not in statuses[:11] and set(statuses[:-1]) == {404}, statuses
    assert_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    # b has a bucket of its own
    assert requests.post(path, json={"content": "hi"}, headers=b.headers).status_code == 404
    # nobody's bucket: a bad token or none is 401, however many
    for _ in range(15):
        assert_problem(requests.post(path, json={"content": "hi"}), 401)
        assert_problem(requests.post(path, json={"content": "hi"},
                                     headers={"Authorization": "Bearer x.y.z"}), 401)
    # the limit is the questions': the sessions of a limited user answer
    assert requests.get(edge + SESSIONS, headers=a.headers).status_code == 200


def reload_nginx(base):
    """The private edge reads its configuration again: SIGHUP to its
    master (nginx -s reload would be a second, ASan-built, process whose
    own leak report fails it), then a moment for the new workers."""
    os.kill(int((base / "nginx.pid").read_text()), signal.SIGHUP)
    time.sleep(1.5)


def test_cross_site_cookie_questions_spend_nobody_s_limit(contract_nginx):  # noqa: F811
    """A cookie on a cross-site unsafe request is refused 403 (the jwt
    module's Origin check); the preaccess phase leaves $encore_jwt_sub
    empty for it, so a page elsewhere cannot spend the victim's questions
    (more such requests than the burst, then the victim's own passes)."""
    edge, _ = contract_nginx
    victim = new_caller()
    path = edge + messages_path(uuid.uuid4())
    cookie = {"Cookie": "encore_access=%s" % victim.token}
    for _ in range(15):
        r = requests.post(path, json={"content": "hi"},
                          headers=dict(cookie, Origin="http://evil.example"))
        assert_problem(r, 403)
    # the victim's bucket is whole: 11 questions (1 + burst 10) pass
    statuses = [requests.post(path, json={"content": "hi"}, headers=victim.headers).status_code
                for _ in range(11)]
    assert statuses == [404] * 11, statuses


def test_chat_429_says_when_a_question_is_let_through(contract_nginx):  # noqa: F811
    """Retry-After of a limited chat question is the rendered
    @CHAT_RETRY_AFTER@ (conf/errors-http.conf's map; 10 s at 6r/m), of other
    limited routes 1: a private edge with the chat value made 17."""
    edge, base = contract_nginx
    limits = base / "conf" / "errors-http.conf"
    text = limits.read_text()
    chat_line = re.compile(r'("~\^POST /api/v1/chat/sessions/[^"]*"\s+)\d+;')
    assert chat_line.search(text), text
    limits.write_text(chat_line.sub(r"\g<1>17;", text))
    reload_nginx(base)
    a = new_caller()
    path = edge + messages_path(uuid.uuid4())
    limited = None
    for _ in range(300):
        r = requests.post(path, json={"content": "hi"}, headers=a.headers)
        if r.status_code == 429:
            limited = r
            break
    assert limited is not None
    assert_problem(limited, 429)
    assert limited.headers["Retry-After"] == "17"
    # the auth bucket's refills in a second
    for _ in range(300):
        r = requests.post(edge + "/api/v1/auth/login", json={})
        if r.status_code == 429:
            assert r.headers["Retry-After"] == "1"
            break
    else:
        raise AssertionError("login was never limited")


def test_open_replies_are_limited_per_user(contract_nginx, provider):  # noqa: F811
    """At most @CHAT_STREAMS@ (3) replies open at once per user
    (limit_conn keyed on $encore_jwt_sub): a fourth while three stream is
    429, another user's still streams, and once one ends the user may
    ask again."""
    edge, _ = contract_nginx
    a, b = new_caller(), new_caller()

    def open_stream(caller):
        sid = requests.post(edge + SESSIONS, json={}, headers=caller.headers).json()["id"]
        return requests.post(edge + messages_path(sid), json={"content": "go [[fake:slow]]"},
                             headers=dict(caller.headers, Accept="text/event-stream"),
                             stream=True, timeout=60)

    held = [open_stream(a) for _ in range(3)]
    try:
        assert [r.status_code for r in held] == [201] * 3
        fourth = open_stream(a)
        assert_problem(fourth, 429)
        assert int(fourth.headers["Retry-After"]) >= 1
        other = open_stream(b)
        assert other.status_code == 201
        other.close()
    finally:
        for r in held:
            r.close()
    # nginx counts a connection until its request ends: a closed client
    # ends it at the next token the worker relays
    def asks_again():
        r = open_stream(a)
        r.close()
        return r.status_code == 201
    wait_until(asks_again, timeout=15, what="a question after the streams ended")


def test_private_answers_are_not_stored(callers):  # noqa: F811
    """Chats and tickets are one person's alone: Cache-Control: no-store,
    once, on the edge's answers (conf/private.conf)."""
    user = callers["user"]
    for path in (SESSIONS, "/api/v1/feedback"):
        r = requests.get(url(path), headers=user.headers)
        assert r.status_code == 200
        assert r.raw.headers.getlist("Cache-Control") == ["no-store"], (path, r.headers)
