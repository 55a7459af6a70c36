"""encore.auth.revocations: each cause that invalidates access tokens
publishes exactly one event, in the transaction of the cause, with the
fields the edge needs and no secret; tokens carry sid and an iat that a
revocation in the same second does not refuse (the edge side is
test_revocation.py)."""
import base64
import json
import os
import time

import requests

from conftest import (kafka_read_all, login, register, url, wait_until,
                      worker_request)

TOPIC = "encore.auth.revocations"
ADMIN_PASSWORD = os.environ.get("ENCORE_ADMIN_PASSWORD", "encore-admin")
CAUSES = {"logout", "refresh_reuse", "password_changed", "disabled",
          "role_changed", "deleted"}


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def ident(user, role="user"):
    return {"X-Encore-User-Id": user["id"], "X-Encore-User-Role": role,
            "X-Encore-User-Name": user["username"]}


def revocations(user_id, n=1, settle=1.0):
    """The revocation events of user_id once n arrived; read again after
    settle seconds so that a second event of the same cause would show."""
    def mine():
        return [m for m in kafka_read_all(TOPIC, missing_ok=True) if m["key"] == user_id]
    wait_until(lambda: len(mine()) >= n, timeout=60, step=0.5,
               what="%d revocation events of %s" % (n, user_id))
    time.sleep(settle)
    return mine()


def check_event(ev, user_id, cause, sid=None, secrets=()):
    h = ev["headers"]
    assert h["ce_type"] == "encore.user.tokens_revoked"
    assert h["ce_source"] == "/encore/auth"
    assert h["ce_subject"] == "users/" + user_id
    assert h["ce_specversion"] == "1.0" and h["ce_id"] and h["ce_time"]
    v = ev["value"]
    want = {"sub", "not_before", "cause", "at"} | ({"sid"} if sid else set())
    assert set(v) == want, v
    assert v["sub"] == user_id and v["cause"] == cause
    assert v.get("sid") == sid
    assert isinstance(v["not_before"], int)
    # issued before: every token so far has iat < not_before, and the
    # bound is near now (the edge keeps the entry not_before + ttl)
    assert abs(v["not_before"] - time.time()) < 30
    assert v["at"].endswith("Z") and len(v["at"]) == len("2026-12-02T01:46:40.123Z")
    raw = ev["raw"].decode()
    for s in secrets:
        assert s not in raw
    assert "argon2" not in raw and "@" not in raw
    return v


def test_tokens_carry_the_session_id():
    user, pw = register()
    a = login(user["username"], pw)
    c = claims(a["access_token"])
    assert set(c) >= {"sub", "role", "name", "iat", "exp", "jti", "sid"}
    assert isinstance(c["iat"], int)
    r = requests.post(url("/api/v1/auth/refresh"), json={"refresh_token": a["refresh_token"]})
    assert r.status_code == 200, r.text
    # a refresh stays in the session, a login starts another
    assert claims(r.json()["access_token"])["sid"] == c["sid"]
    b = login(user["username"], pw)
    assert claims(b["access_token"])["sid"] != c["sid"]


def test_logout_revokes_the_session_once():
    user, pw = register()
    s = login(user["username"], pw)
    sid = claims(s["access_token"])["sid"]
    for _ in range(2):     # the second logout revokes nothing more
        r = requests.post(url("/api/v1/auth/logout"), json={"refresh_token": s["refresh_token"]})
        assert r.status_code == 204, r.text
    evs = revocations(user["id"])
    assert len(evs) == 1, evs
    v = check_event(evs[0], user["id"], "logout", sid=sid,
                    secrets=(s["refresh_token"], s["access_token"], pw))
    assert v["not_before"] > claims(s["access_token"])["iat"]


def test_refresh_reuse_revokes_the_family_once():
    user, pw = register()
    s = login(user["username"], pw)
    sid = claims(s["access_token"])["sid"]
    r = requests.post(url("/api/v1/auth/refresh"), json={"refresh_token": s["refresh_token"]})
    assert r.status_code == 200
    newer = r.json()
    for _ in range(2):     # replayed twice: the family is revoked once
        r = requests.post(url("/api/v1/auth/refresh"), json={"refresh_token": s["refresh_token"]})
        assert r.status_code == 401
    evs = revocations(user["id"])
    assert len(evs) == 1, evs
    v = check_event(evs[0], user["id"], "refresh_reuse", sid=sid,
                    secrets=(s["refresh_token"], newer["refresh_token"]))
    assert v["not_before"] > claims(newer["access_token"])["iat"]


def test_password_change_revokes_every_session():
    user, pw = register()
    s = login(user["username"], pw)
    new_pw = "another long password"
    r = worker_request("auth", "PATCH", "/api/v1/users/me", headers=ident(user),
                       body={"password": new_pw, "current_password": pw})
    assert r.status_code == 200, r.content
    evs = revocations(user["id"])
    assert len(evs) == 1, evs
    v = check_event(evs[0], user["id"], "password_changed",
                    secrets=(pw, new_pw, s["refresh_token"]))
    assert v["not_before"] > claims(s["access_token"])["iat"]
    # a login right after is not refused by it: iat = max(now, not_before)
    fresh = login(user["username"], new_pw)
    assert claims(fresh["access_token"])["iat"] >= v["not_before"]
    # a bio change revokes nothing
    r = worker_request("auth", "PATCH", "/api/v1/users/me", headers=ident(user),
                       body={"bio": "still me"})
    assert r.status_code == 200
    assert len(revocations(user["id"])) == 1


def admin_patch(admin, user_id, body):
    return requests.patch(url("/api/v1/users/" + user_id), json=body,
                          headers={"Authorization": "Bearer " + admin["access_token"]})


def test_role_change_and_disable_each_publish_one_event():
    admin = login("admin", ADMIN_PASSWORD)
    user, pw = register()
    s = login(user["username"], pw)
    # the same role again changes nothing: no event
    assert admin_patch(admin, user["id"], {"role": "user"}).status_code == 200
    r = admin_patch(admin, user["id"], {"role": "moderator"})
    assert r.status_code == 200, r.text
    evs = revocations(user["id"])
    assert len(evs) == 1, evs
    v = check_event(evs[0], user["id"], "role_changed")
    assert v["not_before"] > claims(s["access_token"])["iat"]
    # the next refresh carries the new role and is not refused
    r = requests.post(url("/api/v1/auth/refresh"), json={"refresh_token": s["refresh_token"]})
    assert r.status_code == 200, r.text
    c = claims(r.json()["access_token"])
    assert c["role"] == "moderator" and c["iat"] >= v["not_before"]
    # disabling with a role change at once: one event, "disabled"
    r = admin_patch(admin, user["id"], {"role": "user", "disabled": True})
    assert r.status_code == 200, r.text
    evs = revocations(user["id"], n=2)
    assert len(evs) == 2, evs
    v2 = check_event(evs[1], user["id"], "disabled")
    assert v2["not_before"] >= v["not_before"]
    # disabling again, and enabling, revoke nothing
    assert admin_patch(admin, user["id"], {"disabled": True}).status_code == 200
    assert admin_patch(admin, user["id"], {"disabled": False}).status_code == 200
    assert len(revocations(user["id"], n=2)) == 2


def test_deletion_revokes_every_session():
    user, pw = register()
    s = login(user["username"], pw)
    r = worker_request("auth", "DELETE", "/api/v1/users/me", headers=ident(user),
                       body={"password": pw})
    assert r.status_code == 204, r.content
    evs = revocations(user["id"])
    assert len(evs) == 1, evs
    v = check_event(evs[0], user["id"], "deleted", secrets=(pw, s["refresh_token"]))
    assert v["not_before"] > claims(s["access_token"])["iat"]


def test_a_failed_cause_publishes_nothing():
    """The event is in the cause's transaction: a password change refused
    (wrong current password) leaves no event."""
    user, pw = register()
    r = worker_request("auth", "PATCH", "/api/v1/users/me", headers=ident(user),
                       body={"password": "another long password",
                             "current_password": "not the password"})
    assert r.status_code == 422
    # a later logout's event is the only one
    s = login(user["username"], pw)
    assert requests.post(url("/api/v1/auth/logout"),
                         json={"refresh_token": s["refresh_token"]}).status_code == 204
    evs = revocations(user["id"])
    assert [e["value"]["cause"] for e in evs] == ["logout"]
