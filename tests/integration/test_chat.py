"""Chat through the edge (CONTRACT.md, Chat): sessions and messages, owner
only (another user's session is 404, staff's too), validation, paging,
the events on encore.chat.messages, a deleted account's chats gone, and
the retrieval-only answer (the stack's default: no provider configured)
grounded in the real search worker on the Chinook catalog, buffered and
streamed."""
import uuid

import requests

from conftest import assert_problem, kafka_events, url, wait_until
from catalog_support import conforms, list_all
from chat_support import (SESSIONS, TOPIC, Stream, ask, callers, messages_path,  # noqa: F401
                          new_caller, new_session)
from content_support import new_post, people  # noqa: F401 (a fixture)
from test_search import appears, chinook, items, word  # noqa: F401 (a fixture)


def get(path, caller, **kw):
    return requests.get(url(path), headers=caller.headers, **kw)


# ---- sessions ----------------------------------------------------------------------------

def test_session_create_get_list_delete(callers):
    user = callers["user"]
    s = conforms("Session", new_session(user, title="Jazz questions"))
    assert s["title"] == "Jazz questions"
    assert set(s) == {"id", "title", "created_at", "updated_at"}
    r = get(SESSIONS + "/" + s["id"], user)
    assert r.status_code == 200 and r.json() == s, r.text
    assert s["id"] in [x["id"] for x in list_all(SESSIONS, headers=user.headers)]

    r = requests.delete(url(SESSIONS + "/" + s["id"]), headers=user.headers)
    assert r.status_code == 204, r.text
    assert_problem(get(SESSIONS + "/" + s["id"], user), 404)
    assert_problem(requests.delete(url(SESSIONS + "/" + s["id"]), headers=user.headers), 404)
    assert s["id"] not in [x["id"] for x in list_all(SESSIONS, headers=user.headers)]


def test_session_created_without_body_is_new_chat_then_named(callers):
    user = callers["user"]
    r = requests.post(url(SESSIONS), headers=user.headers)
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["title"] == "New chat"
    assert r.headers["Location"] == SESSIONS + "/" + s["id"]
    q = "  Which   songs are on Powerslave, and who wrote them? " + "x" * 80
    assert ask(user, s["id"], q).status_code == 201
    named = get(SESSIONS + "/" + s["id"], user).json()
    assert named["title"] == " ".join(q.split())[:60]
    assert named["updated_at"] > s["updated_at"]
    # a title given is kept
    t = new_session(user, title="Mine")
    assert ask(user, t["id"], "hello").status_code == 201
    assert get(SESSIONS + "/" + t["id"], user).json()["title"] == "Mine"


def test_session_title_is_validated(callers):
    user = callers["user"]
    # no title is absent, not null
    for bad in ("", "   ", "x" * 201, 7, None):
        r = requests.post(url(SESSIONS), json={"title": bad}, headers=user.headers)
        body = assert_problem(r, 422)
        assert [e["field"] for e in body["errors"]] == ["title"], body
    r = requests.post(url(SESSIONS), json={"title": "ok", "extra": 1}, headers=user.headers)
    assert_problem(r, 422)
    assert requests.post(url(SESSIONS), json={"title": "x" * 200},
                         headers=user.headers).status_code == 201


def test_sessions_are_the_owners_alone(callers):
    mine = new_session(callers["user"])
    ask(callers["user"], mine["id"], "hello")
    for who in ("other", "moderator", "admin"):
        c = callers[who]
        assert_problem(get(SESSIONS + "/" + mine["id"], c), 404)
        assert_problem(get(messages_path(mine["id"]), c), 404)
        assert_problem(requests.post(url(messages_path(mine["id"])), json={"content": "hi"},
                                     headers=c.headers), 404)
        assert_problem(requests.delete(url(SESSIONS + "/" + mine["id"]), headers=c.headers), 404)
        assert mine["id"] not in [x["id"] for x in list_all(SESSIONS, headers=c.headers)]
    # still there, untouched
    assert len(get(messages_path(mine["id"]), callers["user"]).json()["items"]) == 2
    # anonymous: 401 at the edge
    for method, path in (("GET", SESSIONS), ("POST", SESSIONS),
                         ("GET", messages_path(mine["id"]))):
        assert_problem(requests.request(method, url(path), json={}), 401)


def test_unknown_and_malformed_ids_are_404(callers):
    user = callers["user"]
    for sid in (str(uuid.uuid4()), "not-a-uuid"):
        assert_problem(get(SESSIONS + "/" + sid, user), 404)
        assert_problem(get(messages_path(sid), user), 404)
        assert_problem(requests.post(url(messages_path(sid)), json={"content": "hi"},
                                     headers=user.headers), 404)


def test_sessions_list_newest_updated_first_and_paged(callers):
    user = new_caller()
    made = [new_session(user, title="s%d" % i) for i in range(5)]
    # a question moves its session to the top
    ask(user, made[1]["id"], "hello")
    want = [made[1]["id"]] + [s["id"] for s in reversed(made) if s is not made[1]]
    assert [s["id"] for s in list_all(SESSIONS, headers=user.headers, limit=2)] == want
    r = get(SESSIONS, user, params={"cursor": "forged"})
    assert_problem(r, 400)


# ---- messages ----------------------------------------------------------------------------

def test_question_and_reply_are_stored_oldest_first(callers):
    user = callers["user"]
    s = new_session(user)
    r = ask(user, s["id"], "what albums by Iron Maiden are there?")
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == messages_path(s["id"])
    body = conforms("ChatReply", r.json())
    q, a = body["user_message"], body["assistant_message"]
    assert (q["role"], q["content"], q["session_id"]) == \
        ("user", "what albums by Iron Maiden are there?", s["id"])
    assert (a["role"], a["session_id"], a["incomplete"]) == ("assistant", s["id"], False)
    assert q["sources"] == [] and a["content"]
    ask(user, s["id"], "and by Metallica?")
    got = list_all(messages_path(s["id"]), headers=user.headers, limit=1)
    assert [m["role"] for m in got] == ["user", "assistant", "user", "assistant"]
    assert got[0] == q and got[1] == a
    assert [m["created_at"] for m in got] == sorted(m["created_at"] for m in got)


def test_question_is_validated(callers):
    user = callers["user"]
    s = new_session(user)
    for bad in ({}, {"content": ""}, {"content": "   \n"}, {"content": "x" * 10001},
                {"content": 5}, {"content": "hi", "other": 1}):
        r = requests.post(url(messages_path(s["id"])), json=bad, headers=user.headers)
        body = assert_problem(r, 422)
        assert body["errors"], body
    assert get(messages_path(s["id"]), user).json()["items"] == []
    r = ask(user, s["id"], "y" * 10000)
    assert r.status_code == 201, r.text


def test_messages_have_events_on_their_topic(callers):
    user = callers["user"]
    s = new_session(user)
    body = ask(user, s["id"], "what tracks are on Powerslave?").json()
    q, a = body["user_message"], body["assistant_message"]
    got = kafka_events(TOPIC, {(q["id"], "encore.message.created"),
                               (a["id"], "encore.message.created")})
    by_key = {m["key"]: m for m in got}
    assert by_key[q["id"]]["value"] == q and by_key[a["id"]]["value"] == a
    h = by_key[a["id"]]["headers"]
    assert h["ce_source"] == "/encore/chat" and h["ce_subject"] == "messages/" + a["id"]
    # the session's deletion takes its messages from the topic too
    assert requests.delete(url(SESSIONS + "/" + s["id"]), headers=user.headers).status_code == 204
    kafka_events(TOPIC, {(q["id"], "encore.message.deleted"),
                         (a["id"], "encore.message.deleted")})


def test_a_deleted_users_chats_go(callers):
    gone = new_caller()
    s = new_session(gone)
    body = ask(gone, s["id"], "hello there").json()
    mid = body["user_message"]["id"]
    r = requests.delete(url("/api/v1/users/me"), json={"password": gone.password},
                        headers=gone.headers)
    assert r.status_code == 204, r.text
    kafka_events(TOPIC, {(mid, "encore.message.deleted"),
                         (body["assistant_message"]["id"], "encore.message.deleted")},
                 timeout=120)
    from conftest import worker_request
    hdrs = {"X-Encore-User-Id": gone.id, "X-Encore-User-Role": "user"}
    wait_until(lambda: worker_request("chat", "GET", SESSIONS + "/" + s["id"],
                                      headers=hdrs).status_code == 404,
               timeout=60, what="the deleted user's session gone")
    # and a session made later with the (revoked at the edge) identity
    r = worker_request("chat", "POST", SESSIONS, body={}, headers=hdrs)
    assert r.status_code == 422, r.content


# ---- grounding: retrieval-only on the demo catalog ------------------------------------

def iron_maiden_albums():
    artist = [i for i in items("iron maiden", type="artist") if i["title"] == "Iron Maiden"][0]
    albums = list_all("/api/v1/artists/%s/albums" % artist["id"])
    assert len(albums) > 5
    return {a["id"]: a["title"] for a in albums}


def check_grounded(msg, albums):
    assert msg["sources"], msg
    assert all(s["type"] == "album" for s in msg["sources"]), msg["sources"]
    assert {s["id"] for s in msg["sources"]} <= set(albums), msg["sources"]
    assert all(albums[s["id"]] == s["title"] for s in msg["sources"])
    # the reply names what it found, and says no model is configured
    assert any(s["title"] in msg["content"] for s in msg["sources"]), msg["content"]


def test_retrieval_only_answer_is_grounded(chinook, callers):  # noqa: F811
    albums = iron_maiden_albums()
    user = callers["user"]
    s = new_session(user)
    r = ask(user, s["id"], "what albums by Iron Maiden are there?")
    assert r.status_code == 201, r.text
    a = r.json()["assistant_message"]
    check_grounded(a, albums)
    assert len(a["sources"]) >= 5
    assert "model" in a["content"].lower(), a["content"]


def test_retrieval_only_answer_streams_grounded(chinook, callers):  # noqa: F811
    albums = iron_maiden_albums()
    user = callers["user"]
    s = new_session(user)
    st = Stream(user, s["id"], "what albums by Iron Maiden are there?")
    assert st.r.status_code == 201
    assert st.r.headers["Location"] == messages_path(s["id"])
    assert st.r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    # the worker says no-cache; the edge answers every chat no-store
    # (conf/private.conf)
    assert st.r.headers["Cache-Control"] == "no-store"
    events = st.read_all()
    kinds = [e for e, _, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"token"} and len(kinds) > 5, kinds
    done = conforms("Message", events[-1][1])
    assert done["content"] == st.text()
    check_grounded(done, albums)
    # streamed like a real reply: the words over time, not at once
    assert events[-2][2] > events[0][2]
    assert get(messages_path(s["id"]), user).json()["items"][1] == done


def test_retrieval_only_answer_escapes_markdown(people, callers):  # noqa: F811
    """The answer is Markdown and the UI renders it: a user's post title
    that is a link is written as text, its syntax backslash-escaped."""
    w = word()
    title = w + " [Reset your Encore password here](https://evil.example/reset)"
    post = new_post(people["author"]["h"], title=title, status="published")
    appears(w, post["id"], type="post")
    escaped = (w + r" \[Reset your Encore password here\]"
               r"\(https\://evil\.example/reset\)")

    user = callers["user"]
    s = new_session(user)
    r = ask(user, s["id"], "tell me about " + w)
    assert r.status_code == 201, r.text
    a = r.json()["assistant_message"]
    # the source keeps the title as it is: data, not Markdown
    assert {"type": "post", "id": post["id"], "title": title} in a["sources"], a
    assert escaped in a["content"], a["content"]
    assert "](" not in a["content"] and "https://" not in a["content"], a["content"]

    st = Stream(user, s["id"], "tell me about " + w)
    assert st.r.status_code == 201
    events = st.read_all()
    assert events[-1][0] == "done"
    assert escaped in st.text() and "](" not in st.text(), st.text()
    assert events[-1][1]["content"] == st.text()


def test_search_down_is_an_answer_without_sources(callers):
    """Grounding helps, it is not needed: with the search worker stopped
    the question is answered (201, streamed too), without sources."""
    from conftest import stack

    user = callers["user"]
    s = new_session(user)
    stack("stop-worker", "search")
    try:
        r = ask(user, s["id"], "what albums by Iron Maiden are there?")
        assert r.status_code == 201, r.text
        a = r.json()["assistant_message"]
        assert a["sources"] == [] and a["content"] and a["incomplete"] is False
        st = Stream(user, s["id"], "what albums by Iron Maiden are there?")
        assert st.r.status_code == 201
        events = st.read_all()
        assert events[-1][0] == "done" and events[-1][1]["sources"] == []
    finally:
        stack("start-worker", "search")
