"""The catalog's events on the real broker (CONTRACT.md, Events): topics
encore.catalog.artists|albums|tracks, key = id, CloudEvents binary-mode
headers, value = the entity as the API answered it or {"id"} for a delete,
each record valid against schemas/events/<topic>.json; a cascading delete
publishes one deleted event per entity it removed."""
import json
import pathlib

from jsonschema import Draft202012Validator

from conftest import assert_problem, kafka_events
from conftest import url
from catalog_support import (artist_body, bearer, delete, hexid, mod, new_album,  # noqa: F401
                             new_artist, new_track, patch, post, race_delete, tokens)

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOPICS = {"artist": "encore.catalog.artists", "album": "encore.catalog.albums",
          "track": "encore.catalog.tracks"}
PLURAL = {"artist": "artists", "album": "albums", "track": "tracks"}


def validator(topic):
    with open(ROOT / "schemas" / "events" / (topic + ".json"), encoding="utf-8") as f:
        return Draft202012Validator(json.load(f))


def events(kind, want, timeout=90):
    """The records of kind's topic whose key is in want (a set of
    (key, ce_type) pairs), read until every pair was seen."""
    return kafka_events(TOPICS[kind], want, timeout)


def check_record(kind, m, request_id=None):
    """One record against its topic's schema and the contract's headers."""
    v = validator(TOPICS[kind])
    errors = sorted(v.iter_errors(m), key=lambda e: list(e.absolute_path))
    assert not errors, [e.message for e in errors]
    h = m["headers"]
    assert h["ce_specversion"] == "1.0"
    assert h["ce_source"] == "/encore/catalog"
    assert h["ce_subject"] == "%s/%s" % (PLURAL[kind], m["key"])
    assert h["ce_type"].startswith("encore.%s." % kind)
    assert h["ce_id"] and h["ce_time"]
    if request_id is not None:
        assert h.get("ce_encorerequestid") == request_id, h


def of_type(msgs, key, ce_type):
    return [m for m in msgs if m["key"] == key and m["headers"]["ce_type"] == ce_type]


def test_creates_and_updates_publish_the_entity(mod):
    r = post("/api/v1/artists", artist_body(country="IS", genres=["pop"]), mod)
    assert r.status_code == 201, r.text
    artist, created_rid = r.json(), r.headers["X-Request-Id"]
    r = patch("/api/v1/artists/" + artist["id"], {"bio": "changed", "formed_year": None}, mod)
    assert r.status_code == 200, r.text
    artist2, updated_rid = r.json(), r.headers["X-Request-Id"]

    r = post("/api/v1/albums", {"artist_id": artist["id"], "title": "A", "kind": "ep",
                                "release_date": "2001-02-03"}, mod)
    assert r.status_code == 201, r.text
    album = r.json()
    r = patch("/api/v1/albums/" + album["id"], {"release_date": None}, mod)
    assert r.status_code == 200, r.text
    album2 = r.json()

    r = post("/api/v1/tracks", {"album_id": album["id"], "title": "T", "position": 1,
                                "duration_ms": 1234}, mod)
    assert r.status_code == 201, r.text
    track = r.json()
    r = patch("/api/v1/tracks/" + track["id"], {"position": 2}, mod)
    assert r.status_code == 200, r.text
    track2 = r.json()

    for kind, before, after in (("artist", artist, artist2), ("album", album, album2),
                                ("track", track, track2)):
        created, updated = "encore.%s.created" % kind, "encore.%s.updated" % kind
        msgs = events(kind, {(before["id"], created), (before["id"], updated)})
        c, u = of_type(msgs, before["id"], created), of_type(msgs, before["id"], updated)
        assert len({m["headers"]["ce_id"] for m in c}) == 1, c
        assert len({m["headers"]["ce_id"] for m in u}) == 1, u
        assert c[0]["value"] == before
        assert u[0]["value"] == after
        # one key, one partition: in the order they happened
        assert msgs.index(c[0]) < msgs.index(u[0])
        for m in msgs:
            check_record(kind, m)
        if kind == "artist":
            check_record(kind, c[0], created_rid)
            check_record(kind, u[0], updated_rid)


def test_artist_cascade_publishes_one_deleted_event_per_entity(mod):
    artist = new_artist(mod)
    albums = [new_album(mod, artist["id"]) for _ in range(2)]
    tracks = [new_track(mod, a["id"], p) for a in albums for p in (1, 2)]
    r = delete("/api/v1/artists/" + artist["id"], mod)
    assert r.status_code == 204, r.text
    rid = r.headers["X-Request-Id"]

    for kind, ids in (("track", [t["id"] for t in tracks]), ("album", [a["id"] for a in albums]),
                      ("artist", [artist["id"]])):
        deleted = "encore.%s.deleted" % kind
        msgs = events(kind, {(i, deleted) for i in ids})
        for i in ids:
            d = of_type(msgs, i, deleted)
            # at-least-once delivery may repeat a record, never an event
            assert len({m["headers"]["ce_id"] for m in d}) == 1, d
            assert d[0]["value"] == {"id": i}
            assert d[0]["headers"]["ce_subject"] == "%s/%s" % (PLURAL[kind], i)
            check_record(kind, d[0], rid)
        # each deleted entity's events end with its delete
        for i in ids:
            assert [m["headers"]["ce_type"] for m in msgs if m["key"] == i][-1] == deleted


def test_children_created_during_a_cascade_get_their_deleted_event(mod):
    """A child whose create won the race with its parent's delete (201)
    was deleted by it: its deleted event is published like the others."""
    state = {}

    def parent():
        state["artist"] = new_artist(mod)
        state["album"] = new_album(mod, state["artist"]["id"])
        state["pos"] = iter(range(1, 100000))
        return "/api/v1/artists/" + state["artist"]["id"]

    def creates():
        artist_id, album_id, pos = state["artist"]["id"], state["album"]["id"], state["pos"]
        return [
            lambda s: s.post(url("/api/v1/albums"), json={"artist_id": artist_id, "title": "x",
                                                          "kind": "ep"}, headers=mod),
            lambda s: s.post(url("/api/v1/tracks"), json={"album_id": album_id, "title": "x",
                                                          "position": next(pos),
                                                          "duration_ms": 1}, headers=mod),
        ]

    made = race_delete(mod, parent, creates, rounds=5)
    for kind in ("album", "track"):
        ids = {e["id"] for loc, e in made if "/%s/" % PLURAL[kind] in loc}
        if not ids:
            continue
        deleted = "encore.%s.deleted" % kind
        msgs = events(kind, {(i, deleted) for i in ids})
        for i in ids:
            assert len({m["headers"]["ce_id"] for m in of_type(msgs, i, deleted)}) == 1


def test_album_cascade_spares_the_artist(mod):
    artist = new_artist(mod)
    album = new_album(mod, artist["id"])
    tracks = [new_track(mod, album["id"], p) for p in (1, 2, 3)]
    r = delete("/api/v1/albums/" + album["id"], mod)
    assert r.status_code == 204, r.text
    rid = r.headers["X-Request-Id"]
    msgs = events("track", {(t["id"], "encore.track.deleted") for t in tracks})
    for t in tracks:
        check_record("track", of_type(msgs, t["id"], "encore.track.deleted")[0], rid)
    msgs = events("album", {(album["id"], "encore.album.deleted")})
    check_record("album", of_type(msgs, album["id"], "encore.album.deleted")[0], rid)

    # the artist's next event is this update: nothing deleted it before
    r = patch("/api/v1/artists/" + artist["id"], {"bio": "still here"}, mod)
    assert r.status_code == 200, r.text
    msgs = events("artist", {(artist["id"], "encore.artist.updated")})
    assert [m["headers"]["ce_type"] for m in msgs] == ["encore.artist.created",
                                                        "encore.artist.updated"]


def test_refused_writes_publish_nothing(tokens, mod):
    """A key's records keep their order: once the event of a later write
    arrived, any event of the refused ones before it would have too."""
    artist = new_artist(mod)
    other = new_artist(mod)
    album = new_album(mod, artist["id"])
    track = new_track(mod, album["id"], 1)
    new_track(mod, album["id"], 2)
    refused = []
    for r, status in (
            (patch("/api/v1/artists/" + artist["id"], {"slug": other["slug"]}, mod), 409),
            (patch("/api/v1/artists/" + artist["id"], {"country": "XX"}, mod), 422),
            (patch("/api/v1/artists/" + artist["id"], {"bio": "x"}, bearer(tokens["user"])), 403),
            (delete("/api/v1/artists/" + artist["id"], bearer(tokens["user"])), 403),
            (patch("/api/v1/artists/" + artist["id"], {}, mod), 422),
            (patch("/api/v1/tracks/" + track["id"], {"position": 2}, mod), 409),
            (patch("/api/v1/tracks/" + track["id"], {"album_id": album["id"]}, mod), 422),
            (delete("/api/v1/albums/" + album["id"], bearer(None)), 401)):
        assert_problem(r, status)
        refused.append(r.headers["X-Request-Id"])

    r = patch("/api/v1/artists/" + artist["id"], {"bio": "accepted " + hexid()}, mod)
    assert r.status_code == 200, r.text
    last = r.json()
    r = patch("/api/v1/tracks/" + track["id"], {"title": "accepted"}, mod)
    assert r.status_code == 200, r.text
    last_track = r.json()
    r = patch("/api/v1/albums/" + album["id"], {"title": "accepted"}, mod)
    assert r.status_code == 200, r.text

    for kind, entity, final in (("artist", artist, last), ("track", track, last_track)):
        msgs = events(kind, {(entity["id"], "encore.%s.updated" % kind)})
        assert [m["headers"]["ce_type"] for m in msgs] == \
            ["encore.%s.created" % kind, "encore.%s.updated" % kind], msgs
        assert msgs[-1]["value"] == final
        assert not {m["headers"].get("ce_encorerequestid") for m in msgs} & set(refused)
    msgs = events("album", {(album["id"], "encore.album.updated")})
    assert [m["headers"]["ce_type"] for m in msgs] == ["encore.album.created",
                                                       "encore.album.updated"]
