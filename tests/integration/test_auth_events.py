"""encore.auth.users events: CloudEvents binary-mode headers, no secrets,
and the outbox's promise when Kafka is down."""
import json
import signal

import requests

from conftest import (kafka_read, login, register, stack, signal_part,
                      wait_gone, worker_request, unique, url)

TOPIC = "encore.auth.users"


def events_for(user_id, want_types, timeout=60):
    def done(msgs):
        seen = {m["headers"].get("ce_type") for m in msgs if m["key"] == user_id}
        return want_types <= seen
    msgs = kafka_read(TOPIC, until=done, timeout=timeout)
    return [m for m in msgs if m["key"] == user_id]


def test_registered_event_has_cloudevents_headers_and_no_secret():
    user, pw = register(password="a secret password 123")
    tokens = login(user["username"], pw)
    evs = events_for(user["id"], {"encore.user.registered"})
    ev = [e for e in evs if e["headers"]["ce_type"] == "encore.user.registered"][0]
    h = ev["headers"]
    assert h["ce_specversion"] == "1.0"
    assert h["ce_id"] and h["ce_source"] and h["ce_time"] and h["ce_subject"]
    assert ev["value"]["id"] == user["id"]
    assert ev["value"]["username"] == user["username"]
    raw = json.dumps(ev["value"])
    assert "a secret password 123" not in raw
    assert "argon2" not in raw.lower() and "password" not in raw.lower()
    assert tokens["refresh_token"] not in raw


def test_updated_and_deleted_events():
    user, pw = register()
    ident = {"X-Encore-User-Id": user["id"], "X-Encore-User-Role": "user",
             "X-Encore-User-Name": user["username"]}
    r = worker_request("auth", "PATCH", "/api/v1/users/me", headers=ident, body={"bio": "hi"})
    assert r.status_code == 200
    r = worker_request("auth", "DELETE", "/api/v1/users/me", headers=ident, body={"password": pw})
    assert r.status_code == 204
    evs = events_for(user["id"], {"encore.user.registered", "encore.user.updated",
                                  "encore.user.deleted"})
    deleted = [e for e in evs if e["headers"]["ce_type"] == "encore.user.deleted"][0]
    assert deleted["value"] == {"id": user["id"]}


def test_registration_succeeds_with_kafka_down_and_event_arrives_later():
    stack("stop-kafka")
    try:
        name = unique()
        r = requests.post(url("/api/v1/auth/register"),
                          json={"username": name, "email": name + "@x.test",
                                "password": "long enough password"})
        assert r.status_code == 201, r.text
        user_id = r.json()["id"]
    finally:
        stack("start-kafka")
    evs = events_for(user_id, {"encore.user.registered"}, timeout=90)
    assert evs, "event for %s never arrived after Kafka came back" % user_id


def test_request_id_reaches_the_event_header():
    """The edge's request id (every response's X-Request-Id, CONTRACT.md)
    travels to the worker and through the outbox into the event's
    ce_encorerequestid header. A client's own X-Request-Id does not: the
    edge's id replaces it."""
    sent = "client-chosen-%s" % unique()
    name = unique()
    r = requests.post(url("/api/v1/auth/register"), headers={"X-Request-Id": sent},
                      json={"username": name, "email": name + "@x.test",
                            "password": "long enough password"})
    assert r.status_code == 201, r.text
    rid = r.headers["X-Request-Id"]
    assert rid and rid != sent
    ev = [e for e in events_for(r.json()["id"], {"encore.user.registered"})
          if e["headers"]["ce_type"] == "encore.user.registered"]
    assert len(ev) == 1, ev
    assert ev[0]["headers"]["ce_encorerequestid"] == rid, ev[0]["headers"]


def test_request_id_given_to_a_worker_reaches_the_event_header():
    # what the edge does: a worker takes the X-Request-Id it is given
    rid = "given-%s" % unique()
    name = unique()
    r = worker_request("auth", "POST", "/api/v1/auth/register",
                       headers={"X-Request-Id": rid},
                       body={"username": name, "email": name + "@x.test",
                             "password": "long enough password"})
    assert r.status_code == 201, r.content
    assert r.headers["X-Request-Id"] == rid
    ev = [e for e in events_for(r.json()["id"], {"encore.user.registered"})
          if e["headers"]["ce_type"] == "encore.user.registered"]
    assert len(ev) == 1, ev
    assert ev[0]["headers"]["ce_encorerequestid"] == rid, ev[0]["headers"]
