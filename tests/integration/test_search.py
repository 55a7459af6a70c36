"""GET /api/v1/search through the edge (CONTRACT.md, Search; issue 10):
relevance on the Chinook demo catalog (imported here: the test stack has
none otherwise), each kind appearing after its create event and leaving
after its delete, out-of-order and replayed events, a consumer stopped
and caught up, snippets, paging, and hostile queries.

The index is fed by events, so every expectation is polled for with a
bound; a replayed record's effect (none) is read after a sentinel
record produced behind it on the same partition has taken effect."""
import datetime
import json
import uuid

import pytest
import requests

from conftest import KAFKA, assert_problem, stack, url, wait_until
from catalog_support import (conforms, delete, hexid, mod, new_album,  # noqa: F401
                             new_artist, new_track, patch, tokens)
from content_support import POSTS, new_post, people  # noqa: F401

SEARCH = "/api/v1/search"


def search(q, **params):
    params["q"] = q
    return requests.get(url(SEARCH), params=params)


def items(q, **params):
    r = search(q, **params)
    assert r.status_code == 200, r.text
    conforms("SearchResultList", r.json())
    return r.json()["items"]


def poll(pred, what):
    return wait_until(pred, timeout=120.0, what=what)


def ids(q, **params):
    return [i["id"] for i in items(q, **params)]


def appears(q, id_, **params):
    poll(lambda: id_ in ids(q, limit=100, **params), "%s found by %r" % (id_, q))


def leaves(q, id_, **params):
    poll(lambda: id_ not in ids(q, limit=100, **params), "%s gone for %r" % (id_, q))


def word():
    """A word no other test's data holds: letters only, 12 of them."""
    return "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:12])


# ---- relevance on the demo catalog -------------------------------------------------------

TOPICS = ("encore.catalog.artists", "encore.catalog.albums", "encore.catalog.tracks",
          "encore.content.posts")


def caught_up():
    """The search worker's consumer group has committed, on every partition
    of its topics, the offset Kafka would write next: everything produced
    so far is applied (offsets are committed after the database)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": KAFKA, "group.id": "encore-search",
                  "enable.auto.commit": False})
    try:
        parts = [TopicPartition(t, p) for t in TOPICS
                 for p in c.list_topics(t, timeout=10).topics[t].partitions]
        for tp in c.committed(parts, timeout=10):
            high = c.get_watermark_offsets(tp, timeout=10)[1]
            if high > 0 and tp.offset < high:
                return False
        return True
    finally:
        c.close()


@pytest.fixture(scope="module")
def chinook():
    import os
    import subprocess

    from conftest import ROOT
    # the import command's exit under ASan reports leaks of its own (the
    # catalog's, not the index's); the import itself is what counts here
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    r = subprocess.run([str(ROOT / "auto" / "stack"), "import-chinook"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    # the import's last row (the relay publishes in order, a batch at a
    # time), then every partition applied
    wait_until(lambda: any(i["title"] == "Koyaanisqatsi" for i in items("koyaanisqatsi")),
               timeout=300.0, step=1.0, what="the Chinook catalog's last track")
    wait_until(caught_up, timeout=300.0, step=1.0, what="the Chinook catalog in the index")


# (query, type filter, the first result's (type, title))
RELEVANCE = [
    ("Metallica", None, ("artist", "Metallica")),                   # exact
    ("metalica", None, ("artist", "Metallica")),                    # one typo
    ("metalicca", None, ("artist", "Metallica")),                   # two typos, 9+
    ("milles davis", None, ("artist", "Miles Davis")),              # a typo, first word
    ("led zep", None, ("artist", "Led Zeppelin")),                  # prefix, multi-word
    ("aerosm", None, ("artist", "Aerosmith")),                      # type-ahead
    ("led z", None, ("artist", "Led Zeppelin")),                    # a title's prefix
    ("u2", None, ("artist", "U2")),                                 # short, exact
    ("motorhead", None, ("artist", "Motörhead")),                   # accents
    ("ANTONIO CARLOS JOBIM", None, ("artist", "Antônio Carlos Jobim")),  # case, accents
    ("Motörhead", None, ("artist", "Motörhead")),                   # accents asked
    ("stairway heaven", None, ("track", "Stairway To Heaven")),     # multi-word
    ("iron maiden", "album", ("album", "Iron Maiden")),             # type filter
    ("iron maiden", "track", ("track", "Iron Maiden")),
]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("q,kind,first", RELEVANCE, ids=[c[0] + "/" + str(c[1]) for c in RELEVANCE])
def test_relevance_on_the_demo_catalog(chinook, q, kind, first):
    params = {"type": kind} if kind else {}
    got = items(q, **params)
    assert got, q
    assert (got[0]["type"], got[0]["title"]) == first, [(i["type"], i["title"]) for i in got[:5]]
    if kind:
        assert {i["type"] for i in items(q, limit=100, **params)} == {kind}


def test_exact_outranks_prefix_outranks_typo(chinook):
    exact = items("queen", type="artist")[0]
    assert exact["title"] == "Queen" and exact["score"] >= 5_000_000
    prefix = items("led zep")[0]
    assert 4_000_000 <= prefix["score"] < 5_000_000
    typo = items("metalica")[0]
    assert 2_000_000 <= typo["score"] < 3_000_000


def test_typo_budget_follows_word_length(chinook):
    # two edits in an 8-letter word are over its budget of one: no full
    # text match, at most a similar title (score below 2,000,000)
    assert all(i["score"] < 2_000_000 for i in items("metlicaa"))
    # a 4-letter word takes no typo at all
    assert all(i["title"] != "Queen" or i["score"] < 2_000_000 for i in items("quen"))


def test_type_filter_takes_several_kinds(chinook):
    got = items("iron maiden", type="album,track", limit=100)
    assert got and {i["type"] for i in got} <= {"album", "track"}
    assert {"album", "track"} == {i["type"] for i in got}


def test_pages_follow_the_score_and_never_repeat(chinook):
    whole = [(i["type"], i["id"]) for i in items("love", limit=100)]
    assert len(whole) > 12
    seen, cursor = [], None
    while True:
        params = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        r = search("love", **params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [(i["type"], i["id"]) for i in page["items"]]
        scores = [i["score"] for i in page["items"]]
        assert scores == sorted(scores, reverse=True)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert seen[:len(whole)] == whole

    # a cursor belongs to its query and filters
    first = search("love", limit=5).json()["next_cursor"]
    assert_problem(search("hate", limit=5, cursor=first), 400)
    assert_problem(search("love", limit=5, type="track", cursor=first), 400)
    assert_problem(search("love", cursor=first[:-2] + "AA"), 400)


# ---- snippets -----------------------------------------------------------------------------

def test_snippet_marks_words_and_escapes_the_rest(mod):
    w = word()
    a = new_artist(mod, name="<b>Tom & \"Jerry's\"</b> %s Quartet" % w.capitalize())
    appears(w, a["id"])
    hit = [i for i in items(w + " quart") if i["id"] == a["id"]][0]
    assert hit["title"] == a["name"]
    assert hit["snippet"] == ("&lt;b&gt;Tom &amp; &quot;Jerry&#39;s&quot;&lt;/b&gt; "
                              "<mark>%s</mark> <mark>Quartet</mark>" % w.capitalize())


def test_post_snippet_is_the_body_around_the_match(people):
    w = word()
    body = ("<script>alert(1)</script> " + "filler words here " * 40
            + "the %s appears late & stays" % w.upper())
    p = new_post(people["author"]["h"], status="published", title="Snippets " + w[:4],
                 body=body)
    appears(w, p["id"], type="post")
    hit = [i for i in items(w, type="post") if i["id"] == p["id"]][0]
    assert "<mark>%s</mark>" % w.upper() in hit["snippet"]
    assert "&amp; stays" in hit["snippet"]
    assert hit["snippet"].startswith("…") and "<script>" not in hit["snippet"]


# ---- each kind in and out ---------------------------------------------------------------

def test_catalog_kinds_appear_and_leave(mod):
    wa, wb, wt = word(), word(), word()
    artist = new_artist(mod, name="Artist " + wa)
    album = new_album(mod, artist["id"], title="Album " + wb)
    track = new_track(mod, album["id"], 1, title="Track " + wt)

    appears(wa, artist["id"], type="artist")
    appears(wb, album["id"], type="album")
    appears(wt, track["id"], type="track")
    # denormalised: the album found by its artist, the track by both
    appears(wa, album["id"], type="album")
    appears(wa + " " + wt, track["id"])
    appears(wb, track["id"], type="track")

    # a rename reaches the documents that carry the name
    wn = word()
    r = patch("/api/v1/artists/" + artist["id"], {"name": "Renamed " + wn}, mod)
    assert r.status_code == 200, r.text
    appears(wn, track["id"], type="track")
    leaves(wa, artist["id"])
    leaves(wa, track["id"])

    assert delete("/api/v1/tracks/" + track["id"], mod).status_code == 204
    leaves(wt, track["id"])
    assert delete("/api/v1/albums/" + album["id"], mod).status_code == 204
    leaves(wb, album["id"])
    assert delete("/api/v1/artists/" + artist["id"], mod).status_code == 204
    leaves(wn, artist["id"])


def test_artist_delete_takes_its_albums_and_tracks(mod):
    w = word()
    artist = new_artist(mod, name="Doomed " + w)
    album = new_album(mod, artist["id"], title="Doomed album " + w)
    track = new_track(mod, album["id"], 1, title="Doomed track " + w)
    appears(w, track["id"])
    assert delete("/api/v1/artists/" + artist["id"], mod).status_code == 204
    poll(lambda: not set(ids(w, limit=100)) & {artist["id"], album["id"], track["id"]},
         "the artist's documents gone")


def test_posts_while_published(people):
    h = people["author"]["h"]
    w = word()
    draft = new_post(h, title="Draft " + w, status="draft")
    post = new_post(h, title="Post " + w, status="published", tags=["tag" + w[:6]])
    appears(w, post["id"], type="post")
    appears("tag" + w[:6], post["id"])
    assert draft["id"] not in ids(w, type="post")

    r = patch(POSTS + "/" + draft["id"], {"status": "published"}, h)
    assert r.status_code == 200, r.text
    appears(w, draft["id"])

    r = patch(POSTS + "/" + post["id"], {"status": "draft"}, h)
    assert r.status_code == 200, r.text
    leaves(w, post["id"])

    assert delete(POSTS + "/" + draft["id"], h).status_code == 204
    leaves(w, draft["id"])


def test_post_found_by_its_artists_name(people, mod):
    w = word()
    artist = new_artist(mod, name="Muse " + w)
    h = people["author"]["h"]

    def made():
        r = requests.post(url(POSTS), json={"title": "About it", "body": "words",
                                            "status": "published",
                                            "artist_ids": [artist["id"]]}, headers=h)
        assert r.status_code in (201, 422), r.text
        return r.json() if r.status_code == 201 else None
    post = poll(made, "the content worker's artist replica")
    appears(w, post["id"], type="post")


# ---- order and replays, with records produced here -----------------------------------------

def produce(topic, key, ce_type, data, partition=None, ce_id=None, time=None):
    """One CloudEvents record, as the relay writes them; its partition."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": KAFKA})
    got = {}
    headers = [("ce_specversion", "1.0"), ("ce_id", ce_id or str(uuid.uuid4())),
               ("ce_source", "/encore/test"), ("ce_type", ce_type),
               ("ce_time", time or now()), ("ce_subject", "x/" + key),
               ("content-type", "application/json")]
    kw = {"partition": partition} if partition is not None else {}
    p.produce(topic, key=key, value=json.dumps(data), headers=headers,
              on_delivery=lambda err, m: got.update(err=err, partition=m.partition()), **kw)
    p.flush(30)
    assert got and got["err"] is None, got
    return got["partition"]


def now(delta=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def artist_data(id_, name, at):
    return {"id": id_, "name": name, "slug": "s-" + id_[:8], "bio": "", "country": None,
            "formed_year": None, "genres": [], "created_at": at, "updated_at": at}


def settle(topic, partition):
    """A sentinel artist produced on that partition, found: what was produced
    there before it has been applied."""
    sid, w = str(uuid.uuid4()), word()
    produce("encore.catalog.artists", sid, "encore.artist.created",
            artist_data(sid, "Sentinel " + w, now()), partition=partition)
    appears(w, sid)


def test_an_older_state_replayed_changes_nothing():
    topic = "encore.catalog.artists"
    aid, old, new = str(uuid.uuid4()), word(), word()
    first = artist_data(aid, "Older " + old, now(-60))
    produce(topic, aid, "encore.artist.created", first)
    appears(old, aid)
    part = produce(topic, aid, "encore.artist.updated", artist_data(aid, "Newer " + new, now()))
    appears(new, aid)

    # the first state again, as another event (a relay's replay, a restore)
    produce(topic, aid, "encore.artist.updated", first, partition=part)
    settle(topic, part)
    assert aid in ids(new) and aid not in ids(old)


def test_a_deletion_stays_when_older_states_come_after():
    topic = "encore.catalog.artists"
    aid, w = str(uuid.uuid4()), word()
    data = artist_data(aid, "Gone " + w, now(-60))
    part = produce(topic, aid, "encore.artist.created", data)
    appears(w, aid)
    produce(topic, aid, "encore.artist.deleted", {"id": aid}, partition=part, time=now(-1))
    leaves(w, aid)

    produce(topic, aid, "encore.artist.created", data, partition=part)
    produce(topic, aid, "encore.artist.updated", data, partition=part)
    settle(topic, part)
    assert aid not in ids(w)

    # a state newer than the deletion brings it back (the id re-created)
    produce(topic, aid, "encore.artist.created", artist_data(aid, "Back " + w, now()),
            partition=part)
    appears(w, aid)


def test_a_track_before_its_album_and_artist():
    tid, alid, arid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    wt, wal, war = word(), word(), word()
    at = now()
    produce("encore.catalog.tracks", tid, "encore.track.created",
            {"id": tid, "album_id": alid, "title": "Early " + wt, "position": 1,
             "duration_ms": 1000, "created_at": at, "updated_at": at})
    appears(wt, tid)
    produce("encore.catalog.albums", alid, "encore.album.created",
            {"id": alid, "artist_id": arid, "title": "Late " + wal, "release_date": None,
             "kind": "album", "created_at": at, "updated_at": at})
    appears(wal, tid, type="track")
    produce("encore.catalog.artists", arid, "encore.artist.created",
            artist_data(arid, "Later " + war, at))
    appears(war, tid, type="track")
    hit = [i for i in items(wt) if i["id"] == tid][0]
    assert hit["snippet"] == "Early <mark>%s</mark> · Late %s · Later %s" % (wt, wal, war)


def test_malformed_events_change_nothing_and_block_nothing():
    topic = "encore.catalog.artists"
    aid = str(uuid.uuid4())
    part = produce(topic, aid, "encore.artist.updated", {"id": aid, "name": "No version"})
    produce(topic, aid, "encore.artist.updated",
            {"id": aid, "name": "Bad version", "updated_at": "yesterday"}, partition=part)
    settle(topic, part)
    assert aid not in ids("version")


# ---- a consumer stopped and caught up --------------------------------------------------

@pytest.mark.timeout(300)
def test_a_stopped_consumer_catches_up(mod):
    stack("stop-worker", "search")
    try:
        w = word()
        artist = new_artist(mod, name="While away " + w)
        r = search(w)
        assert r.status_code == 502, r.text
    finally:
        stack("start-worker", "search")
    appears(w, artist["id"])


# ---- hostile queries ----------------------------------------------------------------------

HOSTILE = ["x" * 10240, "a & b | !c", "foo:*", "a <-> b", "!!", "'", "\"", "\\", "\\\\'",
           "%", "%%_", "a\x00b", "(((", ")", "é" * 200, "🎸🎸", "_", "null", "a" * 200,
           "<script>alert(1)</script>", "' OR 1=1 --", "$1", "\t\n", "a" + "\u0301" * 50,
           " ".join(["w"] * 100), "\ufffd", "-", "*", "x:A"]


@pytest.mark.parametrize("q", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_are_200_or_422(q):
    r = search(q)
    assert r.status_code in (200, 400, 422), (q[:40], r.status_code, r.text[:300])
    if r.status_code == 200:
        conforms("SearchResultList", r.json())
    else:
        assert_problem(r, r.status_code)


@pytest.mark.parametrize("params", [
    {}, {"q": ""}, {"q": "   "}, {"q": "x" * 201}, {"q": "a", "type": "user"},
    {"q": "a", "type": "post,post"}, {"q": "a", "type": ""}, {"q": "a", "limit": "0"},
    {"q": "a", "limit": "101"}, {"q": "a", "limit": "x"}])
def test_bad_parameters_are_422(params):
    assert_problem(requests.get(url(SEARCH), params=params), 422)


# ---- the log: compacted topics, and a rebuild from them ----------------------------------

def test_entity_topics_are_compacted():
    """auto/stack made every entity topic with cleanup.policy=compact
    (encore-topics), so each keeps the latest record of every key."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    from conftest import ROOT
    # every entity's topic; not the revocations, a stream kept 24 h
    # (its schema's x-encore-topic-configs)
    topics = sorted(p.stem for p in (ROOT / "schemas" / "events").glob("encore.*.json")
                    if "x-encore-topic-configs" not in p.read_text())
    assert "encore.catalog.artists" in topics
    admin = AdminClient({"bootstrap.servers": KAFKA})
    futures = admin.describe_configs([ConfigResource("topic", t) for t in topics])
    for res, fut in futures.items():
        assert fut.result(timeout=30)["cleanup.policy"].value == "compact", res


def search_cli(*args):
    import os
    import subprocess

    from conftest import ROOT
    build = os.environ.get("ENCORE_BUILD", "build")
    return subprocess.run([str(ROOT / build / "bin" / "encore-search"),
                           "-c", "conf/workers/search.conf", *args],
                          cwd=str(ROOT), env=dict(os.environ),
                          capture_output=True, text=True, timeout=600)


REBUILD_QUERIES = ["metalica", "led zep", "love", "iron maiden", "queen", "motorhead",
                   "stairway heaven", "jobim"]


def snapshot(extra):
    return {q: [(i["type"], i["id"], i["snippet"], i["score"]) for i in items(q, limit=100)]
            for q in REBUILD_QUERIES + extra}


@pytest.mark.timeout(900)
def test_rebuild_equals_the_live_index(chinook, mod):
    # something deleted, so the rebuild must read deletions too
    w, gone = word(), word()
    kept = new_artist(mod, name="Kept " + w)
    doomed = new_artist(mod, name="Doomed " + gone)
    appears(gone, doomed["id"])
    assert delete("/api/v1/artists/" + doomed["id"], mod).status_code == 204
    leaves(gone, doomed["id"])
    appears(w, kept["id"])
    wait_until(caught_up, timeout=120.0, step=1.0, what="the index caught up")
    before = snapshot([w, gone])

    r = search_cli("rebuild")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the fresh index is live" in r.stdout, r.stdout

    assert snapshot([w, gone]) == before
    # and the index goes on following the events
    w2 = word()
    later = new_artist(mod, name="Later " + w2)
    appears(w2, later["id"])


@pytest.mark.timeout(900)
def test_search_answers_during_a_rebuild(chinook, mod):
    """Search answers 200 throughout, and what is written while the
    rebuild runs (before its snapshot's ends, between them and the swap,
    or after it) is in the index it leaves."""
    import subprocess
    import os

    from conftest import ROOT
    build = os.environ.get("ENCORE_BUILD", "build")
    proc = subprocess.Popen([str(ROOT / build / "bin" / "encore-search"),
                             "-c", "conf/workers/search.conf", "rebuild"],
                            cwd=str(ROOT), env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    statuses, written = set(), []
    try:
        while proc.poll() is None:
            r = search("metalica")
            statuses.add(r.status_code)
            assert r.status_code == 200, r.text
            assert r.json()["items"][0]["title"] == "Metallica"
            w = word()
            written.append((w, new_artist(mod, name="During " + w)["id"]))
    finally:
        out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    assert statuses == {200}
    for w, id_ in written:
        appears(w, id_)
