"""The per-user limit of chat questions at the edge (conf/limits.conf:
limit_req keyed on the verified token's subject, $encore_jwt_sub, which
the jwt module sets in the preaccess phase, before limit_req)."""
import uuid

import requests

from conftest import assert_problem
from chat_support import SESSIONS, callers, messages_path, new_caller  # noqa: F401
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
