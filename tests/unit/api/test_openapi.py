"""schemas/api/openapi.yaml is valid OpenAPI 3.1 and keeps CONTRACT.md's
conventions; schemas/events/*.json are valid JSON Schemas that accept the
events Encore publishes and reject secrets and malformed records."""
import copy
import uuid

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from openapi_support import (POLICIES, SNAKE, SPEC_PATH, component_validator,
                             load_event_schemas, load_spec, operations, resolve,
                             schema_errors)

SPEC = load_spec()
OPS = operations(SPEC)


def op_id(op_tuple):
    method, path, op = op_tuple
    return op.get("operationId") or "%s %s" % (method, path)


# ---- the document ------------------------------------------------------------


def test_spec_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1."), SPEC["openapi"]
    errors = [str(e).splitlines()[0] for e in OpenAPIV31SpecValidator(SPEC).iter_errors()]
    assert not errors, "openapi.yaml is not valid OpenAPI 3.1:\n  " + "\n  ".join(errors)


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys silently: refuse them."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, "duplicate key %r" % (key,), key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def test_spec_has_no_duplicate_keys():
    # a second `links:` of a response once hid the first
    with open(SPEC_PATH, encoding="utf-8") as f:
        yaml.load(f, Loader=UniqueKeyLoader)
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.load("a:\n  b: 1\n  b: 2\n", Loader=UniqueKeyLoader)


def test_links_reach_operations_and_their_parameters():
    """The OpenAPI links the contract test's stateful phase follows
    (tests/integration/test_schemathesis.py) name an operation and a
    parameter it takes (or a header), or its request body's members."""
    by_id = {op["operationId"]: (method, path, op) for method, path, op in OPS}
    problems, count = [], 0
    for method, path, op in OPS:
        for status, response in op["responses"].items():
            for name, link in resolve(response, SPEC).get("links", {}).items():
                count += 1
                where = "%s %s -> %s" % (op["operationId"], status, name)
                if link.get("operationId") not in by_id:
                    problems.append("%s: no operation %r" % (where, link.get("operationId")))
                    continue
                _, tpath, target = by_id[link["operationId"]]
                params = {resolve(p, SPEC)["name"] for p in target.get("parameters", [])}
                params |= {resolve(p, SPEC)["name"]
                           for p in SPEC["paths"][tpath].get("parameters", [])}
                for key in link.get("parameters", {}):
                    if not key.startswith("header.") and key not in params:
                        problems.append("%s: %s takes no parameter %r"
                                        % (where, link["operationId"], key))
                if "requestBody" in link:
                    body = resolve(target["requestBody"], SPEC)["content"]["application/json"]
                    members = resolve(body["schema"], SPEC).get("properties", {})
                    for key in link["requestBody"]:
                        if key not in members:
                            problems.append("%s: %s's body has no member %r"
                                            % (where, link["operationId"], key))
    assert count > 0
    assert not problems, "\n".join(problems)


def test_component_examples_are_valid():
    # the contract test's examples phase sends them as valid data
    checked = 0
    for name, schema in SPEC["components"]["schemas"].items():
        for example in schema.get("examples", []):
            if isinstance(example, (dict, list)):
                errors = schema_errors(component_validator(name), example)
                assert not errors, (name, example, [e.message for e in errors])
                checked += 1
    assert checked > 0


def test_validator_rejects_a_broken_spec():
    # the check above must be able to fail: a Swagger 2 body parameter, an
    # unknown field and a path parameter nobody declares are invalid
    for breakage in ("in: body", "field", "parameter"):
        broken = copy.deepcopy(SPEC)
        if breakage == "in: body":
            broken["paths"]["/api/v1/auth/me"]["get"]["parameters"] = [
                {"name": "b", "in": "body", "schema": {"type": "object"}}]
        elif breakage == "field":
            broken["paths"]["/api/v1/auth/me"]["get"]["policy"] = "user"
        else:
            broken["paths"]["/api/v1/things/{thing}"] = broken["paths"]["/api/v1/auth/me"]
        assert list(OpenAPIV31SpecValidator(broken).iter_errors()), breakage


def test_operations_have_stable_snake_case_ids_tags_and_a_policy():
    ids = [op.get("operationId") for _, _, op in OPS]
    assert all(ids), "operations without an operationId: %s" % [
        "%s %s" % (m, p) for m, p, op in OPS if not op.get("operationId")]
    bad = [i for i in ids if not SNAKE.match(i)]
    assert not bad, "operationIds not snake_case: %s" % bad
    dups = sorted({i for i in ids if ids.count(i) > 1})
    assert not dups, "duplicate operationIds: %s" % dups
    tags = {t["name"] for t in SPEC["tags"]}
    for t in OPS:
        op = t[2]
        assert op.get("x-encore-policy") in POLICIES, "%s: x-encore-policy %r not one of %s" % (
            op_id(t), op.get("x-encore-policy"), POLICIES)
        assert op.get("tags") and set(op["tags"]) <= tags, "%s: tags %r" % (op_id(t), op.get("tags"))


def test_head_and_options_are_implicit():
    listed = ["%s %s" % (m, p) for m, p, _ in OPS if m in ("HEAD", "OPTIONS", "TRACE", "PUT")]
    assert not listed, "HEAD/OPTIONS are implicit at the edge and no route takes PUT/TRACE: %s" % listed


def test_security_matches_the_policy():
    schemes = set(SPEC["components"]["securitySchemes"])
    assert {"bearerAuth", "cookieAuth"} <= schemes
    assert SPEC["components"]["securitySchemes"]["cookieAuth"]["name"] == "encore_access"
    for t in OPS:
        method, path, op = t
        policy, sec = op["x-encore-policy"], op.get("security")
        assert sec is not None, "%s: no per-operation security" % op_id(t)
        used = {name for req in sec for name in req}
        assert used <= schemes, "%s: unknown schemes %s" % (op_id(t), used - schemes)
        if policy == "public":
            if path.startswith("/api/") or path.startswith("/.well-known/"):
                # identity optional: anonymous, or a valid token
                assert {} in sec and {"bearerAuth": []} in sec and {"cookieAuth": []} in sec, \
                    "%s: a public route takes an optional identity" % op_id(t)
            else:
                assert sec == [], "%s: operational routes do not look at credentials" % op_id(t)
        else:
            assert {} not in sec and sec, "%s: policy %s needs credentials" % (op_id(t), policy)
            assert {"bearerAuth": []} in sec and {"cookieAuth": []} in sec, op_id(t)


# ---- responses -----------------------------------------------------------------

ERROR_CODES = {"400", "401", "403", "404", "405", "409", "413", "415", "422", "429",
               "431", "500", "502", "503", "504"}


def responses(op):
    return {code: resolve(r, SPEC) for code, r in op["responses"].items()}


def test_every_response_carries_x_request_id():
    missing = []
    for t in OPS:
        for code, r in responses(t[2]).items():
            if "X-Request-Id" not in r.get("headers", {}):
                missing.append("%s %s" % (op_id(t), code))
    for name, r in SPEC["components"]["responses"].items():
        if "X-Request-Id" not in r.get("headers", {}):
            missing.append("components/responses/" + name)
    assert not missing, "responses without X-Request-Id: %s" % missing


def test_creates_answer_201_with_location_and_deletes_204():
    for t in OPS:
        method, path, op = t
        rs = responses(op)
        success = sorted(c for c in rs if c.startswith("2"))
        assert len(success) == 1, "%s: one success answer, not %s" % (op_id(t), success)
        if "201" in rs:
            assert method == "POST", op_id(t)
            assert "Location" in rs["201"]["headers"], "%s: 201 without Location" % op_id(t)
        if method == "DELETE":
            assert success == ["204"], "%s: delete answers 204" % op_id(t)
            assert "content" not in rs["204"], op_id(t)


def test_errors_are_problem_json_with_the_right_headers():
    for t in OPS:
        for code, r in responses(t[2]).items():
            if not code.startswith(("4", "5")):
                continue
            where = "%s %s" % (op_id(t), code)
            assert code in ERROR_CODES, where
            assert list(r.get("content", {})) == ["application/problem+json"], where
            schema = resolve(r["content"]["application/problem+json"]["schema"], SPEC)
            if code == "422":
                assert r["content"]["application/problem+json"]["schema"]["$ref"].endswith(
                    "/ValidationProblem"), where
            assert schema, where
            if code == "429":
                assert "Retry-After" in r["headers"], where
            if code == "401":
                assert "WWW-Authenticate" in r["headers"], where
            if code == "405":
                assert "Allow" in r["headers"], where
    edge = SPEC["x-encore-edge-responses"]
    assert set(edge) >= {"404", "405"}
    for code, ref in edge.items():
        r = resolve({"$ref": ref}, SPEC)
        assert r["description"], ref
    assert "Allow" in resolve({"$ref": edge["405"]}, SPEC)["headers"]


def test_each_route_lists_the_errors_it_can_give():
    for t in OPS:
        method, path, op = t
        codes = set(op["responses"])
        where = op_id(t)
        forwarded = path.startswith(("/api/", "/.well-known/"))
        if forwarded:
            assert {"502", "503", "504"} <= codes, "%s: a worker can fail" % where
        if op["x-encore-policy"] != "public" or {} in op["security"]:
            assert "401" in codes, "%s: credentials can be missing or invalid" % where
        if op["x-encore-policy"] in ("moderator", "admin"):
            assert "403" in codes, "%s: the role can be too low" % where
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= codes, "%s: the body can be bad" % where
        if "{" in path:
            assert "404" in codes, "%s: the resource can be missing" % where
        names = {resolve(p, SPEC)["name"] for p in op.get("parameters", [])}
        if {"limit", "cursor"} <= names or "q" in names:
            assert "422" in codes, "%s: a parameter can be invalid" % where
    # 429: where the route's location has limit_req
    # (test_routes_match_openapi.py: test_rate_limited_routes_list_429)


def test_lists_are_paged_envelopes():
    envelope = SPEC["components"]["schemas"]["ListEnvelope"]
    assert envelope["required"] == ["items", "next_cursor"]
    limit = resolve({"$ref": "#/components/parameters/Limit"}, SPEC)["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 20)
    for t in OPS:
        r = responses(t[2])
        ok = r.get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if ok.get("$ref", "").endswith("List"):
            params = {p.get("$ref") for p in t[2].get("parameters", [])}
            assert {"#/components/parameters/Limit", "#/components/parameters/Cursor"} <= params, \
                "%s answers a list but takes no limit/cursor" % op_id(t)
            schema = resolve(ok, SPEC)
            assert schema["allOf"][0] == {"$ref": "#/components/schemas/ListEnvelope"}, op_id(t)


def test_chat_messages_stream_as_server_sent_events():
    op = SPEC["paths"]["/api/v1/chat/sessions/{id}/messages"]["post"]
    content = op["responses"]["201"]["content"]
    assert set(content) == {"application/json", "text/event-stream"}
    assert set(op["x-encore-sse-events"]) == {"token", "done", "error"}


# ---- the constraints of CONTRACT.md, through the component schemas ---------------

UID = "3f2b8c1e-8a4d-4c1e-9f0a-6b7c8d9e0f1a"
TS = "2026-01-02T03:04:05Z"
# entities as the views hold them (the events' examples are below)
POST_EX = {"id": UID, "author_id": UID, "author": "some_user", "title": "t", "body": "b",
           "status": "published", "artist_ids": [UID], "tags": [], "created_at": TS,
           "updated_at": TS, "published_at": TS}
ARTIST_EX = {"id": UID, "name": "Nina Simone", "slug": "nina-simone", "bio": "",
             "country": None, "formed_year": None, "genres": [], "created_at": TS,
             "updated_at": TS}
ALBUM_EX = {"id": UID, "artist_id": UID, "title": "Pastel Blues", "release_date": None,
            "kind": "album", "created_at": TS, "updated_at": TS}

CASES = [
    # (component, instance, valid?)
    ("RegisterRequest", {"username": "abc_123", "email": "a@b.test", "password": "x" * 8}, True),
    ("RegisterRequest", {"username": "ab", "email": "a@b.test", "password": "x" * 8}, False),
    ("RegisterRequest", {"username": "a" * 33, "email": "a@b.test", "password": "x" * 8}, False),
    ("RegisterRequest", {"username": "Abc", "email": "a@b.test", "password": "x" * 8}, False),
    ("RegisterRequest", {"username": "abc", "email": "a@b.test", "password": "x" * 7}, False),
    ("RegisterRequest", {"username": "abc", "email": "a@b.test", "password": "x" * 129}, False),
    ("RegisterRequest", {"username": "abc", "password": "x" * 8}, False),
    ("LoginRequest", {"login": "abc", "password": "p"}, True),
    ("LoginRequest", {"login": "abc"}, False),
    ("UpdateMeRequest", {"bio": "hi"}, True),
    ("UpdateMeRequest", {"password": "new password"}, False),
    ("UpdateMeRequest", {"password": "new password", "current_password": "old"}, True),
    ("UpdateMeRequest", {}, False),
    # changes nothing: the worker answers 422 (Schemathesis)
    ("UpdateMeRequest", {"current_password": "old"}, False),
    ("UpdateMeRequest", {"bio": None}, False),
    ("AdminUpdateUserRequest", {}, False),
    ("AdminUpdateUserRequest", {"other": 1}, False),
    ("RefreshRequest", {"refresh_token": None}, False),
    ("AdminUpdateUserRequest", {"role": "moderator", "disabled": True}, True),
    ("AdminUpdateUserRequest", {"role": "root"}, False),
    ("TokenResponse", {"access_token": "a.b.c", "token_type": "Bearer", "expires_in": 900,
                       "refresh_token": "r", "user": {"id": UID, "username": "abc", "role": "user",
                                                      "bio": "", "created_at": TS}}, True),
    ("TokenResponse", {"access_token": "a.b.c", "token_type": "bearer", "expires_in": 900,
                       "refresh_token": "r", "user": {}}, False),
    ("User", {"id": UID, "username": "abc", "role": "user", "bio": "", "created_at": TS,
              "password_hash": "$argon2id$..."}, False),
    ("AlbumCreate", {"artist_id": UID, "title": "T", "kind": "ep", "release_date": "2020-01-31"}, True),
    ("AlbumCreate", {"artist_id": UID, "title": "T", "kind": "lp"}, False),
    ("AlbumCreate", {"artist_id": UID, "title": "T", "kind": "ep", "release_date": "31/01/2020"}, False),
    ("TrackCreate", {"album_id": UID, "title": "T", "position": 1, "duration_ms": 0}, True),
    ("TrackCreate", {"album_id": UID, "title": "T", "position": 0, "duration_ms": 0}, False),
    ("TrackCreate", {"album_id": UID, "title": "T", "position": 1, "duration_ms": -1}, False),
    ("PostCreate", {"title": "t", "body": "b", "status": "published", "artist_ids": [UID]}, True),
    ("PostCreate", {"title": "", "body": "b"}, False),
    ("PostCreate", {"title": "t" * 201, "body": "b"}, False),
    ("PostCreate", {"title": "t", "body": "b" * 50001}, False),
    ("PostCreate", {"title": "t", "body": "b", "status": "hidden"}, False),
    ("PostCreate", {"title": "t", "body": "b", "artist_ids": ["not-a-uuid"]}, False),
    ("CommentCreate", {"body": "b", "parent_id": None}, True),
    ("CommentCreate", {"body": "b" * 10001}, False),
    ("TicketCreate", {"category": "bug", "subject": "s", "message": "m"}, True),
    ("TicketCreate", {"category": "praise", "subject": "s", "message": "m"}, False),
    ("TicketCreate", {"category": "bug", "subject": "s" * 201, "message": "m"}, False),
    ("TicketUpdate", {"status": "in_progress", "response": "on it"}, True),
    ("TicketUpdate", {"status": "reopened"}, False),
    ("MessageCreate", {"content": "hello"}, True),
    ("MessageCreate", {}, False),
    ("SearchResult", {"type": "track", "id": UID, "title": "t", "snippet": "s", "score": 0.5}, True),
    ("SearchResult", {"type": "user", "id": UID, "title": "t", "snippet": "s", "score": 0.5}, False),
    ("ArtistList", {"items": [], "next_cursor": None}, True),
    ("ArtistList", {"items": [{"id": UID}], "next_cursor": None}, False),
    ("ArtistList", {"items": []}, False),
    ("ValidationProblem", {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
                           "detail": "d", "errors": [{"field": "title", "message": "too long"}]}, True),
    ("ValidationProblem", {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
                           "detail": "d"}, False),
    ("Problem", {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no"}, True),
    ("Problem", {"title": "Not Found", "status": 404}, False),
    ("PostView", {"post": None, "artists": None, "comments": None}, False),
    ("PostView", {"post": POST_EX, "artists": None, "comments": None,
                  "errors": [{"part": "artists", "status": 424},
                             {"part": "comments", "status": 504}]}, True),
    ("PostView", {"post": POST_EX, "artists": [],
                  "comments": {"items": [], "next_cursor": None}}, True),
    ("PostView", {"post": POST_EX, "artists": [],
                  "comments": {"items": [], "next_cursor": None}, "errors": []}, False),
    ("PostView", {"post": POST_EX, "artists": [],
                  "comments": {"items": [], "next_cursor": None}, "extra": 1}, False),
    ("PostView", {"post": POST_EX, "artists": None, "comments": None,
                  "errors": [{"part": "comments", "status": 0}]}, False),
    ("PostView", {"post": POST_EX, "artists": None, "comments": None,
                  "errors": [{"part": "comments", "status": 502, "detail": "x"}]}, False),
    ("ArtistView", {"artist": ARTIST_EX,
                    "albums": [ALBUM_EX], "posts": None,
                    "errors": [{"part": "posts", "status": 502}]}, True),
    ("ArtistView", {"artist": ARTIST_EX, "albums": []}, False),
    ("HomeView", {"latest_posts": [POST_EX], "artists": []}, True),
    ("HomeView", {"latest_posts": None, "artists": None,
                  "errors": [{"part": "latest_posts", "status": 500},
                             {"part": "artists", "status": 503}]}, True),
    ("HomeView", {"latest_posts": {"items": [], "next_cursor": None}, "artists": []}, False),
]


@pytest.mark.parametrize("component,instance,valid", CASES,
                         ids=["%s-%d" % (c[0], i) for i, c in enumerate(CASES)])
def test_component_constraints(component, instance, valid):
    errors = schema_errors(component_validator(component), instance)
    if valid:
        assert not errors, [e.message for e in errors]
    else:
        assert errors, "%s accepted %r" % (component, instance)


# ---- events ----------------------------------------------------------------------

TOPICS = {
    # topic: (worker, entity, ce_subject collection, OpenAPI component)
    "encore.auth.users": ("auth", "user", "users", "User"),
    "encore.catalog.artists": ("catalog", "artist", "artists", "Artist"),
    "encore.catalog.albums": ("catalog", "album", "albums", "Album"),
    "encore.catalog.tracks": ("catalog", "track", "tracks", "Track"),
    "encore.content.posts": ("content", "post", "posts", "Post"),
    "encore.comments.comments": ("comments", "comment", "comments", "Comment"),
    "encore.feedback.tickets": ("feedback", "ticket", "tickets", "Ticket"),
    "encore.chat.messages": ("chat", "message", "messages", "Message"),
}


def entity_example(entity, eid):
    other = str(uuid.UUID(int=7))
    return {
        "user": {"id": eid, "username": "some_user", "role": "user", "bio": "", "created_at": TS},
        "artist": {"id": eid, "name": "Nina Simone", "slug": "nina-simone", "bio": "",
                   "country": "US", "formed_year": None, "genres": ["jazz", "soul"],
                   "created_at": TS, "updated_at": TS},
        "album": {"id": eid, "artist_id": other, "title": "Pastel Blues", "release_date": "1965-10-01",
                  "kind": "album", "created_at": TS, "updated_at": TS},
        "track": {"id": eid, "album_id": other, "title": "Sinnerman", "position": 9,
                  "duration_ms": 622000, "created_at": TS, "updated_at": TS},
        "post": {"id": eid, "author_id": other, "author": "some_user", "title": "On Sinnerman",
                 "body": "**ten** minutes", "status": "published", "artist_ids": [other],
                 "tags": ["jazz"], "created_at": TS, "updated_at": TS, "published_at": TS},
        "comment": {"id": eid, "post_id": other, "parent_id": None, "author_id": None,
                    "author": "[deleted]", "body": "", "depth": 0, "deleted": True,
                    "created_at": TS, "updated_at": TS},
        "ticket": {"id": eid, "user_id": other, "category": "bug", "subject": "s", "message": "m",
                   "status": "open", "response": None, "created_at": TS, "updated_at": TS},
        "message": {"id": eid, "session_id": other, "role": "assistant", "content": "Hello",
                    "created_at": TS},
    }[entity]


def record(topic, ce_type, value=None, **headers):
    worker, entity, coll, _ = TOPICS[topic]
    eid = str(uuid.uuid4())
    if value is None:
        value = {"id": eid} if ce_type.endswith(".deleted") else entity_example(entity, eid)
    h = {"ce_specversion": "1.0", "ce_id": str(uuid.uuid4()), "ce_source": "/encore/" + worker,
         "ce_type": ce_type, "ce_time": "2026-01-02T03:04:05.123456Z",
         "ce_subject": "%s/%s" % (coll, eid), "content-type": "application/json",
         "ce_encorerequestid": "0123456789abcdef"}
    h.update(headers)
    return {"key": eid, "headers": h, "value": value}


def event_validator(topic):
    schema = load_event_schemas()[topic]
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


# topics that carry no entity: each has its own tests below
STREAMS = {"encore.auth.revocations"}


def test_one_event_schema_per_topic():
    schemas = load_event_schemas()
    assert set(schemas) == set(TOPICS) | STREAMS, \
        "schemas/events/ has %s, CONTRACT.md's topics are %s" % (
            sorted(schemas), sorted(set(TOPICS) | STREAMS))
    for topic, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        if topic in STREAMS:
            continue
        assert schema["x-encore-topic"] == topic
        entity = TOPICS[topic][1]
        types = set(schema["x-encore-ce-types"])
        assert types == set(schema["properties"]["headers"]["properties"]["ce_type"]["enum"])
        base = {"encore.%s.%s" % (entity, v) for v in ("updated", "deleted")}
        base.add("encore.user.registered" if entity == "user" else "encore.%s.created" % entity)
        assert base <= types, "%s: %s missing" % (topic, base - types)
        if entity == "post":
            assert "encore.post.published" in types


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_event_examples_validate(topic):
    v = event_validator(topic)
    for ce_type in load_event_schemas()[topic]["x-encore-ce-types"]:
        rec = record(topic, ce_type)
        errors = schema_errors(v, rec)
        assert not errors, "%s %s: %s" % (topic, ce_type, [e.message for e in errors])
        # key = entity id = the subject's id
        assert rec["key"] == rec["value"]["id"] and rec["headers"]["ce_subject"].endswith(rec["key"])


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_event_schemas_reject_malformed_records(topic):
    v = event_validator(topic)
    schema = load_event_schemas()[topic]
    created = [t for t in schema["x-encore-ce-types"] if not t.endswith(".deleted")][0]
    deleted = [t for t in schema["x-encore-ce-types"] if t.endswith(".deleted")][0]
    bad = []
    r = record(topic, created)
    del r["headers"]["ce_id"]
    bad.append(("no ce_id", r))
    bad.append(("specversion 0.3", record(topic, created, ce_specversion="0.3")))
    bad.append(("foreign ce_type", record(topic, "encore.thing.created")))
    bad.append(("other source", record(topic, created, ce_source="/encore/elsewhere")))
    bad.append(("not RFC 3339 UTC", record(topic, created, ce_time="2026-01-02 03:04:05+00")))
    bad.append(("bad subject", record(topic, created, ce_subject="nope")))
    r = record(topic, deleted)
    r["value"]["name"] = "more than the id"
    bad.append(("a delete carrying more than the id", r))
    r = record(topic, created)
    del r["value"]["created_at"]
    bad.append(("an entity without created_at", r))
    r = record(topic, created)
    r["value"]["password_hash"] = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
    bad.append(("a password hash", r))
    r = record(topic, created)
    r["value"]["refresh_token"] = "secret"
    bad.append(("a token", r))
    accepted = [what for what, rec in bad if not list(v.iter_errors(rec))]
    assert not accepted, "%s accepted: %s" % (topic, accepted)


def test_user_events_carry_the_public_view_only():
    v = event_validator("encore.auth.users")
    r = record("encore.auth.users", "encore.user.updated")
    r["value"]["email"] = "someone@example.test"
    assert list(v.iter_errors(r)), "a user event must not carry the email"
    r = record("encore.auth.users", "encore.user.registered")
    r["value"]["disabled"] = False
    assert list(v.iter_errors(r))


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_event_entities_match_the_api_schemas(topic):
    """The value of a created/updated event is the entity as the API answers
    it: same fields as the OpenAPI component (users: the public view)."""
    _, entity, _, component = TOPICS[topic]
    ev = load_event_schemas()[topic]["$defs"][entity]
    api = SPEC["components"]["schemas"][component]
    api_fields = set(api["properties"])
    if entity == "user":
        api_fields -= {"email", "disabled"}
    assert set(ev["properties"]) == api_fields, "%s: event %s vs API %s" % (
        topic, sorted(ev["properties"]), sorted(api_fields))
    assert set(ev["required"]) == set(api["required"]) & api_fields
    example = entity_example(entity, UID)
    errors = schema_errors(component_validator(component), example)
    assert not errors, "%s example does not fit the API's %s: %s" % (
        entity, component, [e.message for e in errors])


# ---- encore.auth.revocations ---------------------------------------------------

def revocation(**value):
    sub = str(uuid.uuid4())
    v = {"sub": sub, "sid": str(uuid.uuid4()), "not_before": 1764640001,
         "cause": "logout", "at": "2026-12-02T01:46:40.123Z"}
    v.update(value)
    v = {k: x for k, x in v.items() if x is not None}
    h = {"ce_specversion": "1.0", "ce_id": str(uuid.uuid4()), "ce_source": "/encore/auth",
         "ce_type": "encore.user.tokens_revoked", "ce_time": "2026-12-02T01:46:40.123456Z",
         "ce_subject": "users/" + sub, "content-type": "application/json"}
    return {"key": sub, "headers": h, "value": v}


def test_revocation_events_validate():
    v = event_validator("encore.auth.revocations")
    schema = load_event_schemas()["encore.auth.revocations"]
    assert schema["x-encore-ce-types"] == ["encore.user.tokens_revoked"]
    # not compacted: an event matters for a token's lifetime only
    assert schema["x-encore-topic-configs"]["cleanup.policy"] == "delete"
    causes = schema["$defs"]["revocation"]["properties"]["cause"]["enum"]
    assert set(causes) == {"logout", "refresh_reuse", "password_changed", "disabled",
                           "role_changed", "deleted"}
    for cause in causes:
        for sid in (None, str(uuid.uuid4())):
            rec = revocation(cause=cause, sid=sid)
            errors = schema_errors(v, rec)
            assert not errors, (cause, [e.message for e in errors])


def test_revocation_schema_rejects_malformed_records_and_secrets():
    v = event_validator("encore.auth.revocations")
    bad = {
        "unknown cause": revocation(cause="expired"),
        "not_before as a string": revocation(not_before="1764640001"),
        "not_before a float": revocation(not_before=1764640001.5),
        "no not_before": revocation(not_before=None),
        "sid not a uuid": revocation(sid="nope"),
        "no at": revocation(at=None),
        "a token": revocation(refresh_token="secret"),
        "an access token": revocation(access_token="eyJ.x.y"),
        "an email": revocation(email="someone@example.test"),
    }
    accepted = [what for what, rec in bad.items() if not list(v.iter_errors(rec))]
    assert not accepted, "accepted: %s" % accepted
