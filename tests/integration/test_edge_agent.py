"""encore-edge-agent against a stand-in edge (edge_agent_support.py):
the window's replay, "replayed", heartbeats, retries while the edge is
down, and the replay again when the edge restarted with an empty zone.
The real edge is test_revocation.py."""
import json
import time
import uuid

import pytest
import requests

from conftest import KAFKA, login, register, stack, url, wait_until
from edge_agent_support import Agent, MockEdge


@pytest.fixture
def edge():
    e = MockEdge()
    yield e
    e.close()


def logout_event(user=None):
    """A logout of a fresh user: (user id, its sid) whose event the agent
    must post."""
    user, pw = user or register()
    s = login(user["username"], pw)
    r = requests.post(url("/api/v1/auth/logout"), json={"refresh_token": s["refresh_token"]})
    assert r.status_code == 204
    return user["id"]


TOPIC = "encore.auth.revocations"


def produce_everywhere(value):
    """value (a dict) as a revocation event on every partition of the
    topic, with CloudEvents headers as auth's relay writes them; the
    number of partitions."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": KAFKA})
    parts = p.list_topics(TOPIC, timeout=30).topics[TOPIC].partitions
    errors = []
    for part in parts:
        headers = [("ce_specversion", "1.0"), ("ce_id", str(uuid.uuid4())),
                   ("ce_source", "/encore/test"),
                   ("ce_type", "encore.user.tokens_revoked"),
                   ("content-type", "application/json")]
        p.produce(TOPIC, key=value["sub"], value=json.dumps(value), headers=headers,
                  partition=part, on_delivery=lambda err, m: errors.append(err))
    p.flush(30)
    assert len(errors) == len(parts) and not any(errors), errors
    return len(parts)


def metric(text, name):
    """The value of an unlabelled sample, 0 when absent."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def posted(edge, sub):
    return [e for e in edge.entries() if e["sub"] == sub]


def test_replays_the_window_then_posts_live_and_heartbeats(edge):
    before = logout_event()
    agent = Agent(edge.url)
    try:
        # the event of before the start comes with the replay
        wait_until(lambda: posted(edge, before), timeout=60, what="the replayed event")
        wait_until(agent.ready, timeout=30, what="agent ready")
        posts = edge.snapshot()
        assert all(ct == "application/json" for _, _, ct in posts)
        # "replayed" only once the agent knew the zone it replayed into
        assert edge.zones_sent[0] is None
        assert all(z == "zone-1" for z, (_, p, _) in zip(edge.zones_sent, posts) if p["replayed"])
        first_true = next(i for i, (_, p, _) in enumerate(posts) if p["replayed"])
        # replayed is false until the window is read, true from then on
        assert all(not p["replayed"] for _, p, _ in posts[:first_true])
        assert all(p["replayed"] for _, p, _ in posts[first_true:])
        e = posted(edge, before)[0]
        assert set(e) == {"sub", "sid", "not_before", "cause"} and e["cause"] == "logout"
        # live: a new event is posted once, promptly
        after = logout_event()
        wait_until(lambda: posted(edge, after), timeout=30, what="the live event")
        assert len(posted(edge, after)) == 1
        # heartbeats: empty posts about every second, "through" moving
        n = len(edge.snapshot())
        time.sleep(3.2)
        beats = edge.snapshot()[n:]
        assert len(beats) >= 2, beats
        assert all(p["revocations"] == [] and p["replayed"] for _, p, _ in beats)
        assert beats[-1][1]["through"] >= beats[0][1]["through"] > 0
        status, metrics = agent.get("/metrics")
        assert status == 200
        for name in ("encore_agent_events_total", "encore_agent_posts_total",
                     "encore_agent_replayed 1"):
            assert name in metrics.decode(), name
    finally:
        assert agent.stop() == 0


def test_edge_down_retries_and_restarted_edge_gets_the_replay_again(edge):
    agent = Agent(edge.url)
    try:
        wait_until(agent.ready, timeout=60, what="agent ready")
        edge.status = 503
        down = logout_event()
        # not taken: the agent is behind after agent.stale_ms
        wait_until(lambda: not agent.ready(), timeout=30, what="agent not ready")
        assert not posted(edge, down)
        # back, with an empty zone (another zone id): the window again
        with edge.lock:
            edge.posts.clear()
            edge.zone = "zone-2"
            edge.status = 204
        wait_until(agent.ready, timeout=60, what="agent ready again")
        wait_until(lambda: [p for _, p, _ in edge.snapshot() if p["replayed"]],
                   timeout=30, what="replayed again")
        assert posted(edge, down)
        posts = edge.snapshot()
        assert not posts[0][1]["replayed"] or posted(edge, down)
    finally:
        assert agent.stop() == 0


def test_zone_change_without_failure_replays(edge):
    before = logout_event()
    agent = Agent(edge.url)
    try:
        wait_until(lambda: posted(edge, before), timeout=60, what="replay")
        wait_until(agent.ready, timeout=30, what="agent ready")
        # the agent sends back the zone it replayed into
        assert edge.zones_sent[-1] == "zone-1"
        with edge.lock:
            edge.posts.clear()
            edge.zones_sent.clear()
            edge.zone = "restarted"
        # the next answer tells the agent; the entry comes again, and the
        # agent claims "replayed" for the new zone only after it
        wait_until(lambda: posted(edge, before), timeout=30, what="the window again")
        wait_until(lambda: "restarted" in edge.zones_sent, timeout=30, what="the new zone sent")
        with edge.lock:
            posts, sent = list(edge.posts), list(edge.zones_sent)
        again = next(i for i, (_, p, _) in enumerate(posts)
                     if any(e["sub"] == before for e in p["revocations"]))
        for i, ((_, p, _), z) in enumerate(zip(posts, sent)):
            if z == "restarted" and p["replayed"]:
                assert i >= again, (i, again)
    finally:
        assert agent.stop() == 0


@pytest.mark.timeout(300)
def test_kafka_down_is_behind_not_caught_up(edge):
    """An agent that cannot reach Kafka looks idle: its heartbeats must
    not say "through": now, and its /readyz fails."""
    agent = Agent(edge.url)
    try:
        wait_until(agent.ready, timeout=60, what="agent ready")
        stack("stop-kafka")
        try:
            stopped = time.time() * 1000
            wait_until(lambda: not agent.ready(), timeout=60, what="agent behind")
            time.sleep(2)
            beats = [p for _, p, _ in edge.snapshot()[-2:]]
            assert beats and all(p["through"] <= stopped for p in beats), (stopped, beats)
        finally:
            stack("start-kafka")
        wait_until(agent.ready, timeout=120, what="agent ready again")
        assert edge.snapshot()[-1][1]["through"] > stopped
    finally:
        assert agent.stop() == 0


def test_entry_the_edge_refuses_is_dropped_alone(edge):
    """An entry the agent takes but the edge refuses (400 for the whole
    batch): the agent posts the batch's entries one by one, drops only the
    refused one, once, counted; no replay, no loop, still ready."""
    agent = Agent(edge.url)
    try:
        wait_until(agent.ready, timeout=60, what="agent ready")
        bad = str(uuid.uuid4())
        with edge.lock:
            edge.refuse.add(bad)
        n = produce_everywhere({"sub": bad, "not_before": int(time.time()),
                                "cause": "logout",
                                "at": "2026-01-01T00:00:00.000Z"})
        good = logout_event()
        wait_until(lambda: posted(edge, good), timeout=30, what="the genuine event")
        wait_until(lambda: metric(agent.get("/metrics")[1].decode(),
                                  "encore_agent_revocations_dropped_total") >= n,
                   timeout=30, what="the refused entries dropped")
        # a few heartbeats later: dropped once each, never again
        time.sleep(2.5)
        text = agent.get("/metrics")[1].decode()
        assert metric(text, "encore_agent_revocations_dropped_total") == n, text
        assert metric(text, "encore_agent_replays_total") == 0, text
        assert not posted(edge, bad)
        assert len(posted(edge, good)) == 1
        # refused: the batch that held it, then the entry alone; no more
        assert len(edge.refused) <= 2 * n, edge.refused
        assert agent.ready()
        assert "refused revocation" in agent.log.read_text()
    finally:
        assert agent.stop() == 0


def test_poison_event_is_skipped_and_later_revocations_go_through(edge):
    """An event the edge would refuse (not_before past year 9999) is
    dropped by the agent itself, logged and counted, and blocks nothing."""
    agent = Agent(edge.url)
    try:
        wait_until(agent.ready, timeout=60, what="agent ready")
        before = metric(agent.get("/metrics")[1].decode(), "encore_agent_events_skipped_total")
        poison = str(uuid.uuid4())
        n = produce_everywhere({"sub": poison, "not_before": 99999999999999,
                                "cause": "logout"})
        good = logout_event()
        wait_until(lambda: posted(edge, good), timeout=30, what="the genuine event")
        text = agent.get("/metrics")[1].decode()
        assert metric(text, "encore_agent_events_skipped_total") == before + n, text
        assert metric(text, "encore_agent_replays_total") == 0, text
        assert not posted(edge, poison) and not edge.refused
        assert agent.ready()
        assert "is no revocation; skipped" in agent.log.read_text()
    finally:
        assert agent.stop() == 0
