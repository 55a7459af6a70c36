"""The catalog through the edge (CONTRACT.md, Catalog; openapi artists_*,
albums_*, tracks_*): CRUD, who may write, every field's rules, lists and
their cursors.  The events are in test_catalog_events.py."""
import datetime
import threading
import urllib.parse
import uuid

import pytest
import requests

from conftest import assert_problem, url
from catalog_support import (ROLES, artist_body, assert_field_problem,  # noqa: F401
                             assert_invalid, bearer, conforms, delete, fetch, get,
                             hexid, list_all, mod, new_album, new_artist, new_track,
                             patch, post, tokens)

ARTISTS = "/api/v1/artists"
ALBUMS = "/api/v1/albums"
TRACKS = "/api/v1/tracks"

NOT_UUIDS = ("abc", "123", "0", "00000000-0000-0000-0000-00000000000",
             "00000000-0000-0000-0000-0000000000000", "g0000000-0000-0000-0000-000000000000",
             "00000000000000000000000000000000", "{00000000-0000-0000-0000-000000000000}",
             "%20", "..%2f")


def location_of(r, collection):
    entity = r.json()
    loc = r.headers["Location"]
    assert urllib.parse.urljoin(url("/"), loc) == url("%s/%s" % (collection, entity["id"])), loc
    return loc


def stamp(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))


# ---- CRUD: artists ------------------------------------------------------------------------

def test_artist_create_get_list_patch_delete(mod):
    h = hexid()
    r = post(ARTISTS, {"name": "Sigur Rós " + h, "slug": "sigur-ros-" + h}, mod)
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Request-Id"]
    artist = conforms("Artist", r.json())
    loc = location_of(r, ARTISTS)
    # the optional fields' defaults
    assert artist["name"] == "Sigur Rós " + h and artist["slug"] == "sigur-ros-" + h
    assert artist["bio"] == "" and artist["country"] is None
    assert artist["formed_year"] is None and artist["genres"] == []
    assert artist["created_at"] == artist["updated_at"]
    uuid.UUID(artist["id"])

    # GET the Location: the same artist, to anyone
    assert fetch(loc) == artist
    page = fetch(ARTISTS + "?q=" + urllib.parse.quote("sigur ros " + h))
    conforms("ArtistList", page)
    assert page == {"items": [artist], "next_cursor": None}

    r = patch(loc, {"bio": "Icelandic post-rock.", "country": "IS", "formed_year": 1994,
                    "genres": ["post-rock", "ambient"]}, mod)
    assert r.status_code == 200, r.text
    changed = conforms("Artist", r.json())
    assert changed["bio"] == "Icelandic post-rock." and changed["country"] == "IS"
    assert changed["formed_year"] == 1994 and changed["genres"] == ["post-rock", "ambient"]
    assert changed["name"] == artist["name"] and changed["slug"] == artist["slug"]
    assert changed["id"] == artist["id"] and changed["created_at"] == artist["created_at"]
    assert stamp(changed["updated_at"]) > stamp(artist["updated_at"])
    assert fetch(loc) == changed

    r = delete(loc, mod)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_problem(get(loc), 404)
    assert_problem(delete(loc, mod), 404)
    assert_problem(patch(loc, {"bio": "x"}, mod), 404)
    assert fetch(ARTISTS + "?q=" + urllib.parse.quote("sigur ros " + h))["items"] == []


def test_artist_create_with_every_field(mod):
    body = artist_body(bio="b" * 10000, country="IS", formed_year=datetime.date.today().year,
                       genres=["g%d" % i for i in range(10)])
    r = post(ARTISTS, body, mod)
    assert r.status_code == 201, r.text
    artist = conforms("Artist", r.json())
    for k, v in body.items():
        assert artist[k] == v, k
    assert fetch(ARTISTS + "/" + artist["id"]) == artist


# ---- CRUD: albums ----------------------------------------------------------------------------

def test_album_create_get_list_patch_delete(mod):
    artist = new_artist(mod)
    r = post(ALBUMS, {"artist_id": artist["id"], "title": "Ágætis byrjun",
                      "release_date": "1999-06-12", "kind": "album"}, mod)
    assert r.status_code == 201, r.text
    album = conforms("Album", r.json())
    loc = location_of(r, ALBUMS)
    assert album["artist_id"] == artist["id"] and album["title"] == "Ágætis byrjun"
    assert album["release_date"] == "1999-06-12" and album["kind"] == "album"
    assert fetch(loc) == album

    page = fetch("%s/%s/albums" % (ARTISTS, artist["id"]))
    conforms("AlbumList", page)
    assert page == {"items": [album], "next_cursor": None}

    r = patch(loc, {"title": "( )", "kind": "ep", "release_date": "2002-10-28"}, mod)
    assert r.status_code == 200, r.text
    changed = conforms("Album", r.json())
    assert (changed["title"], changed["kind"], changed["release_date"]) == \
        ("( )", "ep", "2002-10-28")
    assert changed["artist_id"] == artist["id"]
    assert stamp(changed["updated_at"]) > stamp(album["updated_at"])
    assert fetch(loc) == changed

    r = delete(loc, mod)
    assert r.status_code == 204, r.text
    assert_problem(get(loc), 404)
    assert_problem(delete(loc, mod), 404)
    # the artist stays, with no albums
    assert fetch("%s/%s" % (ARTISTS, artist["id"])) == artist
    assert fetch("%s/%s/albums" % (ARTISTS, artist["id"])) == {"items": [], "next_cursor": None}


def test_album_optional_fields(mod):
    artist = new_artist(mod)
    r = post(ALBUMS, {"artist_id": artist["id"], "title": "Untitled", "kind": "single"}, mod)
    assert r.status_code == 201, r.text
    album = conforms("Album", r.json())
    assert album["release_date"] is None
    # a leap day is a date; uppercase UUIDs name the same artist
    r = post(ALBUMS, {"artist_id": artist["id"].upper(), "title": "Leap",
                      "release_date": "2020-02-29", "kind": "compilation"}, mod)
    assert r.status_code == 201, r.text
    assert r.json()["artist_id"] == artist["id"]
    assert r.json()["release_date"] == "2020-02-29"


def test_artist_albums_in_release_order_undated_last(mod):
    artist = new_artist(mod)
    made = [new_album(mod, artist["id"], release_date=d, title=d or "undated")
            for d in ("2005-01-01", None, "1999-12-31", "2010-06-01", "1999-12-31")]
    got = list_all("%s/%s/albums" % (ARTISTS, artist["id"]), limit=1)
    dated = sorted((a for a in made if a["release_date"]), key=lambda a: (a["release_date"], a["id"]))
    assert [a["id"] for a in got] == [a["id"] for a in dated] + [made[1]["id"]]
    assert got[-1]["release_date"] is None
    for a in got:
        conforms("Album", a)


# ---- CRUD: tracks -------------------------------------------------------------------------------

def test_track_create_get_list_patch_delete(mod):
    album = new_album(mod, new_artist(mod)["id"])
    r = post(TRACKS, {"album_id": album["id"], "title": "Svefn-g-englar", "position": 1,
                      "duration_ms": 600000}, mod)
    assert r.status_code == 201, r.text
    track = conforms("Track", r.json())
    loc = location_of(r, TRACKS)
    assert (track["album_id"], track["title"], track["position"], track["duration_ms"]) == \
        (album["id"], "Svefn-g-englar", 1, 600000)
    assert fetch(loc) == track

    page = fetch("%s/%s/tracks" % (ALBUMS, album["id"]))
    conforms("TrackList", page)
    assert page == {"items": [track], "next_cursor": None}

    r = patch(loc, {"title": "Starálfur", "position": 2, "duration_ms": 0}, mod)
    assert r.status_code == 200, r.text
    changed = conforms("Track", r.json())
    assert (changed["title"], changed["position"], changed["duration_ms"]) == ("Starálfur", 2, 0)
    assert changed["album_id"] == album["id"]
    assert fetch(loc) == changed

    r = delete(loc, mod)
    assert r.status_code == 204, r.text
    assert_problem(get(loc), 404)
    assert_problem(delete(loc, mod), 404)
    assert fetch("%s/%s" % (ALBUMS, album["id"])) == album
    assert fetch("%s/%s/tracks" % (ALBUMS, album["id"])) == {"items": [], "next_cursor": None}


def test_album_tracks_by_position(mod):
    album = new_album(mod, new_artist(mod)["id"])
    other = new_album(mod, album["artist_id"])
    made = {p: new_track(mod, album["id"], p) for p in (3, 1, 10, 2, 7)}
    new_track(mod, other["id"], 4)
    for limit in (1, 2, 100):
        got = list_all("%s/%s/tracks" % (ALBUMS, album["id"]), limit=limit)
        assert [t["position"] for t in got] == [1, 2, 3, 7, 10]
        assert [t["id"] for t in got] == [made[p]["id"] for p in (1, 2, 3, 7, 10)]
    # moving a track moves it in the list
    r = patch("%s/%s" % (TRACKS, made[10]["id"]), {"position": 5}, mod)
    assert r.status_code == 200, r.text
    got = list_all("%s/%s/tracks" % (ALBUMS, album["id"]), limit=2)
    assert [t["position"] for t in got] == [1, 2, 3, 5, 7]


def test_album_delete_takes_its_tracks(mod):
    album = new_album(mod, new_artist(mod)["id"])
    tracks = [new_track(mod, album["id"], p) for p in (1, 2)]
    assert delete("%s/%s" % (ALBUMS, album["id"]), mod).status_code == 204
    for t in tracks:
        assert_problem(get("%s/%s" % (TRACKS, t["id"])), 404)
    assert_problem(get("%s/%s/tracks" % (ALBUMS, album["id"])), 404)
    assert fetch("%s/%s/albums" % (ARTISTS, album["artist_id"]))["items"] == []


def test_artist_delete_takes_albums_and_tracks(mod):
    artist = new_artist(mod)
    albums = [new_album(mod, artist["id"]) for _ in range(2)]
    tracks = [new_track(mod, a["id"], p) for a in albums for p in (1, 2)]
    other = new_artist(mod)
    kept = new_track(mod, new_album(mod, other["id"])["id"], 1)

    assert delete("%s/%s" % (ARTISTS, artist["id"]), mod).status_code == 204
    assert_problem(get("%s/%s" % (ARTISTS, artist["id"])), 404)
    assert_problem(get("%s/%s/albums" % (ARTISTS, artist["id"])), 404)
    for a in albums:
        assert_problem(get("%s/%s" % (ALBUMS, a["id"])), 404)
        assert_problem(get("%s/%s/tracks" % (ALBUMS, a["id"])), 404)
    for t in tracks:
        assert_problem(get("%s/%s" % (TRACKS, t["id"])), 404)
    # nothing of another artist went with it
    assert fetch("%s/%s" % (TRACKS, kept["id"])) == kept
    assert fetch("%s/%s" % (ARTISTS, other["id"])) == other


# ---- 404: unknown ids, ids that are not UUIDs -------------------------------------------------------

@pytest.mark.parametrize("collection,body", [
    (ARTISTS, {"bio": "x"}), (ALBUMS, {"title": "x"}), (TRACKS, {"title": "x"})])
def test_unknown_ids_are_404(mod, collection, body):
    for ident in [str(uuid.uuid4()), str(uuid.uuid4()).upper()] + list(NOT_UUIDS):
        path = "%s/%s" % (collection, ident)
        for r in (get(path), patch(path, body, mod), delete(path, mod)):
            body_ = assert_problem(r, 404)
            assert "items" not in body_
            conforms("Problem", body_)


def test_child_lists_of_unknown_parents_are_404(mod):
    for ident in [str(uuid.uuid4())] + list(NOT_UUIDS):
        assert_problem(get("%s/%s/albums" % (ARTISTS, ident)), 404)
        assert_problem(get("%s/%s/tracks" % (ALBUMS, ident)), 404)
    # with a cursor-less later page too: the limit does not change it
    assert_problem(get("%s/%s/albums?limit=1" % (ARTISTS, uuid.uuid4())), 404)
    # a parent without children is an empty list, not a 404
    artist = new_artist(mod)
    assert fetch("%s/%s/albums" % (ARTISTS, artist["id"])) == {"items": [], "next_cursor": None}
    album = new_album(mod, artist["id"])
    assert fetch("%s/%s/tracks" % (ALBUMS, album["id"])) == {"items": [], "next_cursor": None}


def test_an_album_id_is_not_an_artist_id(mod):
    album = new_album(mod, new_artist(mod)["id"])
    track = new_track(mod, album["id"], 1)
    assert_problem(get("%s/%s" % (ARTISTS, album["id"])), 404)
    assert_problem(get("%s/%s/albums" % (ARTISTS, album["id"])), 404)
    assert_problem(get("%s/%s" % (ALBUMS, track["id"])), 404)
    assert_problem(get("%s/%s/tracks" % (ALBUMS, album["artist_id"])), 404)


# ---- 409 and 422 from the database's rules ----------------------------------------------------------

def test_duplicate_slug_is_409_on_create_and_patch(mod):
    a = new_artist(mod)
    r = post(ARTISTS, artist_body(slug=a["slug"]), mod)
    body = assert_field_problem(r, 409, "slug")
    assert [e["field"] for e in body["errors"]] == ["slug"]
    assert fetch(ARTISTS + "?q=" + urllib.parse.quote(a["name"]))["items"] == [a]

    b = new_artist(mod)
    r = patch("%s/%s" % (ARTISTS, b["id"]), {"slug": a["slug"], "bio": "changed"}, mod)
    assert_field_problem(r, 409, "slug")
    assert fetch("%s/%s" % (ARTISTS, b["id"])) == b
    # an artist keeping its own slug is no conflict
    r = patch("%s/%s" % (ARTISTS, a["id"]), {"slug": a["slug"]}, mod)
    assert r.status_code == 200, r.text


def test_duplicate_position_is_409_within_an_album_only(mod):
    album = new_album(mod, new_artist(mod)["id"])
    other = new_album(mod, album["artist_id"])
    one = new_track(mod, album["id"], 1)
    two = new_track(mod, album["id"], 2)
    r = post(TRACKS, {"album_id": album["id"], "title": "dup", "position": 1,
                      "duration_ms": 1}, mod)
    assert_field_problem(r, 409, "position")
    r = patch("%s/%s" % (TRACKS, two["id"]), {"position": 1, "title": "moved"}, mod)
    assert_field_problem(r, 409, "position")
    assert fetch("%s/%s" % (TRACKS, two["id"])) == two
    assert [t["id"] for t in list_all("%s/%s/tracks" % (ALBUMS, album["id"]))] == \
        [one["id"], two["id"]]
    # the same position on another album is fine
    new_track(mod, other["id"], 1)


def test_unknown_parent_on_create_is_422(mod):
    r = post(ALBUMS, {"artist_id": str(uuid.uuid4()), "title": "x", "kind": "album"}, mod)
    assert_invalid(r, "artist_id")
    r = post(TRACKS, {"album_id": str(uuid.uuid4()), "title": "x", "position": 1,
                      "duration_ms": 1}, mod)
    assert_invalid(r, "album_id")
    # a deleted parent is unknown too
    artist = new_artist(mod)
    album = new_album(mod, artist["id"])
    assert delete("%s/%s" % (ARTISTS, artist["id"]), mod).status_code == 204
    assert_invalid(post(ALBUMS, {"artist_id": artist["id"], "title": "x", "kind": "ep"}, mod),
                   "artist_id")
    assert_invalid(post(TRACKS, {"album_id": album["id"], "title": "x", "position": 1,
                                 "duration_ms": 1}, mod), "album_id")


# ---- who may write ----------------------------------------------------------------------------------------

def _write(kind, method, headers, h):
    """One write of each kind against fresh test data of the moderator's
    (h): returns (response, check) where check() asserts that nothing
    changed, for a refused write."""
    artist = new_artist(h)
    album = new_album(h, artist["id"])
    track = new_track(h, album["id"], 1)
    target = {"artists": artist, "albums": album, "tracks": track}[kind]
    path = "/api/v1/%s/%s" % (kind, target["id"])

    if method == "POST":
        body = {"artists": artist_body(),
                "albums": {"artist_id": artist["id"], "title": "new", "kind": "ep"},
                "tracks": {"album_id": album["id"], "title": "new", "position": 2,
                           "duration_ms": 5}}[kind]
        if kind == "artists":
            where, was = ARTISTS + "?q=" + urllib.parse.quote(body["name"]), []
        elif kind == "albums":
            where, was = "%s/%s/albums" % (ARTISTS, artist["id"]), [album]
        else:
            where, was = "%s/%s/tracks" % (ALBUMS, album["id"]), [track]

        def check():
            assert fetch(where)["items"] == was, "a refused create made a row"
        return requests.post(url("/api/v1/" + kind), json=body, headers=headers), check

    def check():
        assert fetch(path) == target, "a refused write changed the row"
        for p, child in (("%s/%s" % (ALBUMS, album["id"]), album),
                         ("%s/%s" % (TRACKS, track["id"]), track)):
            assert fetch(p) == child
    if method == "PATCH":
        body = {"artists": {"bio": "changed"}, "albums": {"title": "changed"},
                "tracks": {"title": "changed"}}[kind]
        return requests.patch(url(path), json=body, headers=headers), check
    return requests.delete(url(path), headers=headers), check


WRITES = [(k, m) for k in ("artists", "albums", "tracks") for m in ("POST", "PATCH", "DELETE")]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind,method", WRITES)
def test_write_authorization(tokens, mod, role, kind, method):
    r, unchanged = _write(kind, method, bearer(tokens[role]), mod)
    if role == "anonymous":
        assert_problem(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer"), r.headers
        unchanged()
    elif role == "user":
        assert_problem(r, 403)
        unchanged()
    else:
        expected = {"POST": 201, "PATCH": 200, "DELETE": 204}[method]
        assert r.status_code == expected, (role, kind, method, r.status_code, r.text)
        if method == "DELETE":
            assert_problem(get(r.request.path_url), 404)
        elif method == "PATCH":
            assert r.json()["updated_at"] != r.json()["created_at"]
            assert fetch(r.request.path_url) == r.json()
        else:
            assert fetch(r.headers["Location"]) == r.json()


def test_refused_artist_create_makes_nothing(tokens):
    for role in ("anonymous", "user"):
        body = artist_body()
        r = post(ARTISTS, body, bearer(tokens[role]))
        assert r.status_code in (401, 403), r.text
        assert fetch(ARTISTS + "?q=" + urllib.parse.quote(body["name"]))["items"] == []


def test_credentials_are_checked_before_the_body(tokens):
    """CONTRACT.md: route, then credentials, then the body."""
    for path in (ARTISTS, ALBUMS, TRACKS):
        r = post(path, {"nonsense": True}, bearer(None))
        assert_problem(r, 401)
        r = post(path, {"nonsense": True}, bearer(tokens["user"]))
        assert_problem(r, 403)
        r = requests.post(url(path), data="{not json", headers=bearer(tokens["user"]))
        assert_problem(r, 403)
    ident = str(uuid.uuid4())
    for coll in (ARTISTS, ALBUMS, TRACKS):
        assert_problem(patch("%s/%s" % (coll, ident), {}, bearer(None)), 401)
        assert_problem(patch("%s/%s" % (coll, ident), {}, bearer(tokens["user"])), 403)
        assert_problem(delete("%s/not-a-uuid" % coll, bearer(tokens["user"])), 403)


def test_invalid_token_is_401(mod):
    artist = new_artist(mod)
    bad = {"Authorization": "Bearer not.a.token"}
    r = patch("%s/%s" % (ARTISTS, artist["id"]), {"bio": "x"}, bad)
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # on public reads, an invalid token is 401 too (CONTRACT.md), none is anonymous
    assert_problem(get("%s/%s" % (ARTISTS, artist["id"]), headers=bad), 401)
    assert fetch("%s/%s" % (ARTISTS, artist["id"])) == artist


@pytest.mark.parametrize("role", ROLES)
def test_reads_are_public(tokens, mod, role):
    artist = new_artist(mod)
    album = new_album(mod, artist["id"])
    track = new_track(mod, album["id"], 1)
    h = bearer(tokens[role])
    for path, want in (("%s/%s" % (ARTISTS, artist["id"]), artist),
                       ("%s/%s" % (ALBUMS, album["id"]), album),
                       ("%s/%s" % (TRACKS, track["id"]), track)):
        r = get(path, headers=h)
        assert r.status_code == 200, r.text
        assert r.json() == want
    for path, want in (("%s/%s/albums" % (ARTISTS, artist["id"]), album),
                       ("%s/%s/tracks" % (ALBUMS, album["id"]), track)):
        r = get(path, headers=h)
        assert r.status_code == 200, r.text
        assert r.json() == {"items": [want], "next_cursor": None}
    r = get(ARTISTS, headers=h, params={"q": artist["name"]})
    assert r.status_code == 200 and r.json()["items"] == [artist]
