"""Chat with a model: the chat worker pointed at the fake OpenAI-compatible
provider (tests/fakes/fake_llm.py) for this module, through the real edge.
The scenario is the marker in the question ("[[fake:NAME]]"): a reply
streamed incrementally (the first token reaches the client before the
provider has sent its last), the client leaving cancels the provider's
request, the provider's refusals mapped to problem+json (429 -> 503 with
Retry-After, 5xx -> 503, a slow first token -> 504), a stream cut midway
or malformed stored as far as it came and marked incomplete, and the
grounding results reaching the model."""
import requests

from conftest import assert_problem, url, wait_until
from catalog_support import conforms
from chat_support import (Stream, ask, callers, messages_path, new_session,  # noqa: F401
                          provider)


def fake_request(fake, marker):
    """The provider's record of the one request whose question holds marker."""
    got = [r for r in fake.requests()
           if any(marker in (m.get("content") or "") for m in r["messages"]
                  if m.get("role") == "user")]
    assert len(got) == 1, got
    return got[0]


def test_normal_reply_is_grounded_and_stored(provider, callers):
    user = callers["user"]
    s = new_session(user)
    r = ask(user, s["id"], "what albums by Iron Maiden are there? [[fake:normal]] n1")
    assert r.status_code == 201, r.text
    a = conforms("ChatReply", r.json())["assistant_message"]
    assert a["incomplete"] is False and a["content"]
    req = fake_request(provider, "n1")
    assert req["model"] == "fake-model" and req["stream"] is True and req["finished"]
    # the question last, the sources in the system prompt
    assert req["messages"][-1]["role"] == "user"
    assert req["messages"][0]["role"] == "system"
    for src in a["sources"]:
        assert src["title"] in req["messages"][0]["content"]


def test_history_reaches_the_model(provider, callers):
    user = callers["user"]
    s = new_session(user)
    assert ask(user, s["id"], "first question h1").status_code == 201
    assert ask(user, s["id"], "second question h2").status_code == 201
    req = fake_request(provider, "h2")
    said = [(m["role"], m["content"]) for m in req["messages"] if m["role"] != "system"]
    assert said[0] == ("user", "first question h1") and said[1][0] == "assistant"
    assert said[-1] == ("user", "second question h2")


def test_reply_streams_incrementally_through_the_edge(provider, callers):
    user = callers["user"]
    s = new_session(user)
    st = Stream(user, s["id"], "tell me about Miles Davis [[fake:slow]] inc1")
    assert st.r.status_code == 201, st.r.text
    assert st.r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    # the worker says no-cache; the edge answers every chat no-store
    # (conf/private.conf)
    assert st.r.headers["Cache-Control"] == "no-store"
    events = st.read_all()
    assert [e for e, _, _ in events].count("token") >= 40
    assert events[-1][0] == "done"
    first_at = [t for e, _, t in events if e == "token"][0]
    req = fake_request(provider, "inc1")
    # the first token was at the client before the provider sent its last
    assert first_at < req["last_token_at"], (first_at, req["last_token_at"])
    done = conforms("Message", events[-1][1])
    assert done["content"] == st.text() and done["incomplete"] is False
    stored = requests.get(url(messages_path(s["id"])), headers=user.headers).json()["items"]
    assert stored[-1] == done


def test_client_leaving_cancels_the_provider(provider, callers):
    user = callers["user"]
    s = new_session(user)
    st = Stream(user, s["id"], "a long story please [[fake:slow]] gone1")
    it = iter(st)
    first = next(it)
    assert first[0] == "token"
    st.close()
    wait_until(lambda: fake_request(provider, "gone1")["client_closed"], timeout=30,
               what="the provider's request closed by the worker")
    req = fake_request(provider, "gone1")
    assert not req["finished"] and req["tokens_sent"] < 40
    # what arrived is stored, marked incomplete

    def stored():
        items = requests.get(url(messages_path(s["id"])), headers=user.headers).json()["items"]
        return len(items) == 2 and items[1]
    reply = wait_until(stored, timeout=30, what="the cut reply stored")
    assert reply["role"] == "assistant" and reply["incomplete"] is True
    assert reply["content"].startswith(first[1]["content"])


def test_provider_429_is_503_with_retry_after(provider, callers):
    user = callers["user"]
    s = new_session(user)
    r = ask(user, s["id"], "hello [[fake:r429]] rl1")
    body = assert_problem(r, 503)
    assert r.headers["Retry-After"] == "7", r.headers
    assert body["status"] == 503
    st = Stream(user, s["id"], "hello [[fake:r429]] rl2")
    assert_problem(st.r, 503)
    assert st.r.headers["Retry-After"] == "7"
    # the questions stay, without replies
    roles = [m["role"] for m in
             requests.get(url(messages_path(s["id"])), headers=user.headers).json()["items"]]
    assert roles == ["user", "user"]


def test_provider_500_is_503(provider, callers):
    user = callers["user"]
    s = new_session(user)
    assert_problem(ask(user, s["id"], "hello [[fake:r500]] e1"), 503)
    st = Stream(user, s["id"], "hello [[fake:r500]] e2")
    assert_problem(st.r, 503)


def test_slow_first_token_is_504(provider, callers):
    user = callers["user"]
    s = new_session(user)
    assert_problem(ask(user, s["id"], "hello [[fake:slow_first]] sf1"), 504)
    st = Stream(user, s["id"], "hello [[fake:slow_first]] sf2")
    assert_problem(st.r, 504)


def test_cut_stream_is_stored_incomplete_and_said(provider, callers):
    user = callers["user"]
    s = new_session(user)
    st = Stream(user, s["id"], "hello [[fake:cut]] cut1")
    assert st.r.status_code == 201
    events = st.read_all()
    kinds = [e for e, _, _ in events]
    assert kinds == ["token"] * 3 + ["done"], kinds
    done = conforms("Message", events[-1][1])
    assert done["incomplete"] is True and done["content"] == st.text()
    r = ask(user, s["id"], "hello [[fake:cut]] cut2")
    assert r.status_code == 201, r.text
    assert r.json()["assistant_message"]["incomplete"] is True


def test_malformed_chunk_ends_the_reply_incomplete(provider, callers):
    user = callers["user"]
    s = new_session(user)
    st = Stream(user, s["id"], "hello [[fake:malformed]] mf1")
    assert st.r.status_code == 201
    events = st.read_all()
    assert events[-1][0] == "done", events
    done = conforms("Message", events[-1][1])
    assert done["content"] == st.text()
    assert done["incomplete"] is True, done
