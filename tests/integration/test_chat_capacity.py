"""A full engine refuses a question before storing it: the chat worker
pointed at the fake provider with provider.max_streams = 1, its one reply
held open by a question the fake never answers ([[fake:hang]]); another
question is then 503 with Retry-After, buffered or streamed, and leaves
nothing behind: no message in its session, no request at the provider.
Questions racing for the one reply: each is answered with both messages
stored (201) or refused with none (503), whichever check refused it."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import assert_problem, url, wait_until
from chat_support import (FakeLLM, Stream, ask, ask_on_socket, messages_path,  # noqa: F401
                          new_caller, new_session, restart_chat)


@pytest.fixture(scope="module")
def one_stream():
    fake = FakeLLM()
    restart_chat(ENCORE_PROVIDER_URL=fake.base, ENCORE_PROVIDER_MODEL="fake-model",
                 ENCORE_PROVIDER_RETRIES="0", ENCORE_PROVIDER_MAX_STREAMS="1",
                 ENCORE_PROVIDER_FIRST_TOKEN_TIMEOUT_MS="60000")
    try:
        yield fake
    finally:
        restart_chat()
        fake.stop()


def held(fake, caller, sid, marker):
    """A question the fake never answers: its reply held open until the
    socket is closed."""
    s = ask_on_socket(caller, sid, "[[fake:hang]] " + marker)
    wait_until(lambda: fake.request(marker), timeout=30,
               what="the held question at the provider")
    return s


def stored(caller, sid):
    r = requests.get(url(messages_path(sid)), headers=caller.headers)
    assert r.status_code == 200, r.text
    return [m["role"] for m in r.json()["items"]]


def test_a_full_engine_stores_no_question(one_stream):
    owner = new_caller()
    hold = held(one_stream, owner, new_session(owner)["id"], "cap-held")
    try:
        user = new_caller()
        s = new_session(user)
        r = ask(user, s["id"], "hello [[fake:normal]] cap-refused")
        body = assert_problem(r, 503)
        assert r.headers["Retry-After"] == "1", r.headers
        assert "not stored" in body["detail"], body
        st = Stream(user, s["id"], "hello [[fake:normal]] cap-refused")
        assert_problem(st.r, 503)
        assert st.r.headers["Retry-After"] == "1"
        # nothing of either is left: no question, no provider request
        assert stored(user, s["id"]) == []
        assert one_stream.request("cap-refused") is None
    finally:
        hold.close()
    wait_until(lambda: one_stream.request("cap-held")["client_closed"],
               timeout=30, what="the held question's provider request closed")


def test_questions_racing_for_the_last_reply(one_stream):
    """Several at once while the one reply is free: they pass the first
    check together and the engine takes one; a question refused after it
    was stored is taken back."""
    people = [new_caller() for _ in range(5)]

    def one(args):
        p, sid, i = args
        return ask(p, sid, "hello [[fake:normal]] race%d" % i)

    # rounds until one was answered (the last reply of the test before
    # may still be ending): every round's answers are checked
    for _ in range(5):
        sessions = [new_session(p)["id"] for p in people]
        with ThreadPoolExecutor(len(people)) as pool:
            answers = list(pool.map(one, [(p, sid, i) for i, (p, sid)
                                          in enumerate(zip(people, sessions))]))
        codes = [r.status_code for r in answers]
        assert set(codes) <= {201, 503}, [r.text for r in answers]
        for p, sid, r in zip(people, sessions, answers):
            assert stored(p, sid) == (["user", "assistant"] if r.status_code == 201
                                      else []), r.text
        if 201 in codes:
            break
    else:
        pytest.fail("no question of five rounds was answered")
