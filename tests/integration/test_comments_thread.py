"""Thread order as a property (CONTRACT.md, Comments: depth first, oldest
first within a parent; Conventions: paging has no duplicates or gaps while
rows are added).

For several seeds, a random tree of 1,000 comments is built through the
API (a mix of depths up to the limit of 8, by several authors, some
deleted), and the listing, paged with small random limits, must equal a
reference depth-first walk of the tree as the test built it.  Then, while
one client pages through the thread, another keeps adding replies all over
it: the pages must have no duplicates and miss none of the comments that
existed when paging began, and what they show is in the final thread's
order."""
import random

import pytest
import requests

from conftest import url
from comments_support import (add, comments_path, depth_first, listing,  # noqa: F401
                              new_post, people)

SEEDS = (1, 2, 3)
SIZE = 1000
DEPTH_MAX = 8


def random_parent(rng, made):
    """None (a top-level comment) or a comment that may take a reply.
    Recent comments are favoured, so chains reach the deepest level."""
    if not made or rng.random() < 0.08:
        return None
    pick = made[-1 - int(rng.expovariate(0.15)) % len(made)] if rng.random() < 0.6 \
        else rng.choice(made)
    while pick["depth"] >= DEPTH_MAX:
        pick = made[pick["index_of_parent"]]
    return pick


def build_tree(rng, s, post_id, authors, size):
    """size comments, built through the API: (made, by_id)."""
    made = []
    for _ in range(size):
        parent = random_parent(rng, made)
        c = add(s, rng.choice(authors), post_id, body="c%d %s" % (len(made), "x" * rng.randint(0, 40)),
                parent_id=parent["id"] if parent else None)
        assert c["depth"] == (parent["depth"] + 1 if parent else 0)
        c["index_of_parent"] = made.index(parent) if parent else None
        made.append(c)
    return made


def page_through(s, post_id, rng, between=None):
    """The thread, page by page with random small limits; between(i) runs
    after each page."""
    params, out, i = {}, [], 0
    while True:
        params["limit"] = rng.randint(1, 12)
        r = s.get(url(comments_path(post_id)), params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= params["limit"]
        out += page["items"]
        if page["next_cursor"] is None:
            return out
        assert len(page["items"]) == params["limit"]
        params["cursor"] = page["next_cursor"]
        if between:
            between(i)
        i += 1


# 1,000 writes each: longer than the suite's per-test limit on a loaded
# machine (auto/test: --timeout)
@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", SEEDS)
def test_listing_is_a_depth_first_walk(people, seed):
    rng = random.Random(seed)
    s = requests.Session()
    post_id = new_post()
    authors = [people["author"], people["other"], people["moderator"]]
    made = build_tree(rng, s, post_id, authors, SIZE)
    depths = {c["depth"] for c in made}
    assert depths == set(range(DEPTH_MAX + 1)), sorted(depths)

    # some deleted, by their authors or by the moderator: they keep their
    # places, emptied
    by_name = {a.name: a for a in authors}
    for c in rng.sample(made, SIZE // 10):
        who = by_name[c["author"]] if rng.random() < 0.5 else people["moderator"]
        r = s.delete(url("/api/v1/comments/" + c["id"]), headers=who.h)
        assert r.status_code == 204, r.text
        c["deleted"] = True

    want = depth_first(made)
    got = page_through(s, post_id, rng)
    assert [c["id"] for c in got] == [c["id"] for c in want]
    for g, w in zip(got, want):
        assert g["parent_id"] == w["parent_id"] and g["depth"] == w["depth"]
        assert g["deleted"] == w["deleted"]
        assert g["body"] == ("" if w["deleted"] else w["body"])
    # the largest pages agree with the smallest
    assert [c["id"] for c in listing(post_id, limit=100)] == [c["id"] for c in want]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", SEEDS)
def test_paging_while_replies_are_added(people, seed):
    rng = random.Random(1000 + seed)
    s, writer = requests.Session(), requests.Session()
    post_id = new_post()
    authors = [people["author"], people["other"]]
    made = build_tree(rng, s, post_id, authors, 300)
    before = {c["id"] for c in made}

    def add_some(_):
        for _ in range(rng.randint(1, 6)):
            parent = random_parent(rng, made)
            c = add(writer, rng.choice(authors), post_id,
                    parent_id=parent["id"] if parent else None)
            c["index_of_parent"] = made.index(parent) if parent else None
            made.append(c)

    seen = page_through(s, post_id, rng, between=add_some)
    ids = [c["id"] for c in seen]
    assert len(ids) == len(set(ids)), "a comment was listed twice"
    assert before <= set(ids), "comments that existed before paging were missed: %d" % \
        len(before - set(ids))
    assert len(made) > len(before)
    # what was seen is in the final thread's order
    final = [c["id"] for c in depth_first(made)]
    pos = {cid: i for i, cid in enumerate(final)}
    assert [pos[i] for i in ids] == sorted(pos[i] for i in ids)
    assert [c["id"] for c in listing(post_id)] == final
