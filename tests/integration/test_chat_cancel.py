"""Deleting a chat session, or the account that owns it, stops its
replies on their way: the provider's request is closed at once (the fake
records client_closed) instead of running to its end only to be thrown
away, and the answer says the session is gone.  The chat worker is
pointed at the fake provider with a first-token deadline far beyond the
tests, so that a reply the fake never starts ([[fake:hang]]) can only end
by the cancel: a 404, where without it would come a 504."""
import pytest
import requests

from conftest import url, wait_until
from chat_support import (SESSIONS, FakeLLM, Stream, ask_on_socket, callers,  # noqa: F401
                          new_caller, new_session, restart_chat, status_of)


@pytest.fixture(scope="module")
def patient():
    fake = FakeLLM()
    restart_chat(ENCORE_PROVIDER_URL=fake.base, ENCORE_PROVIDER_MODEL="fake-model",
                 ENCORE_PROVIDER_RETRIES="0",
                 ENCORE_PROVIDER_FIRST_TOKEN_TIMEOUT_MS="600000",
                 ENCORE_PROVIDER_TOTAL_TIMEOUT_MS="600000")
    try:
        yield fake
    finally:
        restart_chat()
        fake.stop()


def closed(fake, marker):
    wait_until(lambda: fake.request(marker)["client_closed"], timeout=60,
               what="the provider's request closed by the worker")
    assert not fake.request(marker)["finished"]


def held(fake, caller, sid, marker):
    s = ask_on_socket(caller, sid, "[[fake:hang]] " + marker)
    wait_until(lambda: fake.request(marker), timeout=30, what="the question at the provider")
    return s


def test_deleting_the_session_cancels_its_reply_midway(patient, callers):
    user = callers["user"]
    s = new_session(user)
    st = Stream(user, s["id"], "a long story please [[fake:slow]] del-mid")
    assert st.r.status_code == 201
    it = iter(st)
    assert next(it)[0] == "token"
    assert requests.delete(url(SESSIONS + "/" + s["id"]),
                           headers=user.headers).status_code == 204
    closed(patient, "del-mid")
    rest = list(it)
    assert rest[-1][0] == "error" and rest[-1][1]["status"] == 404, rest[-1]
    st.close()


def test_deleting_the_session_cancels_a_reply_not_begun(patient, callers):
    user = callers["user"]
    s = new_session(user)
    sock = held(patient, user, s["id"], "del-wait")
    try:
        assert requests.delete(url(SESSIONS + "/" + s["id"]),
                               headers=user.headers).status_code == 204
        closed(patient, "del-wait")
        assert status_of(sock) == 404
    finally:
        sock.close()


def test_deleting_the_account_cancels_its_replies(patient):
    gone = new_caller()
    sock = held(patient, gone, new_session(gone)["id"], "del-user")
    try:
        r = requests.delete(url("/api/v1/users/me"), json={"password": gone.password},
                            headers=gone.headers)
        assert r.status_code == 204, r.text
        closed(patient, "del-user")
        assert status_of(sock) == 404
    finally:
        sock.close()
