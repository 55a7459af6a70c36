"""Schemathesis hooks of tests/integration/test_schemathesis.py (loaded by
Schemathesis through SCHEMATHESIS_HOOKS, not by pytest)."""
import datetime
import os
import uuid

import requests
import schemathesis

EDGE = os.environ["ENCORE_ST_EDGE"]
INT64 = range(-2 ** 63, 2 ** 63)


def _out_of_range(value):
    if isinstance(value, dict):
        return any(_out_of_range(v) for v in value.values())
    if isinstance(value, list):
        return any(_out_of_range(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and value not in INT64


def _future_year(body):
    # the spec's Year: "not after the current year (UTC): a later one is
    # 422, which a schema cannot say"
    year = body.get("formed_year") if isinstance(body, dict) else None
    return (isinstance(year, (int, float)) and not isinstance(year, bool)
            and year > datetime.datetime.now(datetime.timezone.utc).year)


@schemathesis.hook
def filter_body(context, body):
    # RFC 8259 lets a server limit numbers, and the spec says where: an
    # integer beyond 64 bits answers 400 (components/responses/BadRequest),
    # so a body with one is not the valid data that
    # positive_data_acceptance expects to be taken; nor is a year the
    # spec's description refuses
    return not _out_of_range(body) and not _future_year(body)


# ---- authentication ----------------------------------------------------------------
#
# A token per policy (x-encore-policy; public operations, whose identity is
# optional, get the user's): the test hands over a user's, a moderator's and
# an admin's. The run's admin disables and demotes the accounts it finds in
# responses, the others' included (its own it cannot: 409): then their
# operations would answer 401 or 403 to everything and test nothing. So a
# 401 or 403 sends Schemathesis back here, and a token that no longer
# carries its role is replaced by a fresh account's.

def _policy(case, context=None):
    return case.operation.definition.raw.get("x-encore-policy", "public")


def _bearer(token):
    return {"Authorization": "Bearer " + token}


def _works(token, role):
    r = requests.get(EDGE + "/api/v1/auth/me", headers=_bearer(token), timeout=30)
    return r.status_code == 200 and r.json().get("role") == role


def _fresh(role, admin_token):
    name = "st_%s_%s" % (role[:3], uuid.uuid4().hex[:10])
    password = "contract-%s" % uuid.uuid4().hex
    r = requests.post(EDGE + "/api/v1/auth/register", timeout=30,
                      json={"username": name, "email": name + "@example.test",
                            "password": password})
    r.raise_for_status()
    if role != "user":
        requests.patch(EDGE + "/api/v1/users/" + r.json()["id"], json={"role": role},
                       headers=_bearer(admin_token), timeout=30).raise_for_status()
    r = requests.post(EDGE + "/api/v1/auth/login", json={"login": name, "password": password},
                      timeout=30)
    r.raise_for_status()
    return r.json()["access_token"]


@schemathesis.auth(cache_by_key=_policy, retry_on=[401, 403])
class Accounts:
    tokens = {role: os.environ["ENCORE_ST_%s_TOKEN" % role.upper()]
              for role in ("user", "moderator", "admin")}
    replaced = 0

    def get(self, case, context):
        role = _policy(case)
        role = "user" if role == "public" else role
        if not _works(self.tokens[role], role):
            assert role != "admin", "the run's admin lost its role"
            Accounts.tokens[role] = _fresh(role, self.tokens["admin"])
            Accounts.replaced += 1
        return self.tokens[role]

    def set(self, case, token, context):
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = "Bearer " + token
