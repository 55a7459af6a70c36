"""The outbox's promise — never lost, possibly duplicated, never applied
twice — tested the way Kafka's own system tests do: record every write the
service acknowledged, inject a fault, then check every acknowledged write was
consumed exactly once.

The probe worker (workers/probe) writes a row and its event in one
transaction (POST /writes) and consumes its own topic into a `seen` table
through the runtime's inbox (GET /seen). It is reached on its unix socket.
"""
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import (ROOT, RUN_DIR, kafka_read, kafka_read_all, pg_immediate_stop,
                      pid_of, signal_part, stack, wait_gone, wait_until,
                      worker_request)

TOPIC = "encore.probe.writes"


def write(value, rollback=False):
    path = "/writes?rollback=1" if rollback else "/writes"
    try:
        r = worker_request("probe", "POST", path, body={"value": value})
    except OSError:
        return None
    if r.status_code == 201:
        return r.json()["id"]
    return None


def seen():
    r = worker_request("probe", "GET", "/seen")
    assert r.status_code == 200, r.content
    return {item["write_id"]: item["count"] for item in r.json()["items"]}


def assert_all_applied_once(acked, timeout=120):
    def check():
        try:
            s = seen()
        except OSError:
            return False
        return all(w in s for w in acked) and s
    s = wait_until(check, timeout=timeout, what="every acknowledged write consumed")
    missing = [w for w in acked if w not in s]
    assert not missing, "lost writes: %r" % missing[:10]
    twice = {w: c for w, c in s.items() if c != 1}
    assert not twice, "applied more than once: %r" % twice


class Writer(threading.Thread):
    """Writes continuously; records the ids the service acknowledged."""

    def __init__(self, tag):
        super().__init__(daemon=True)
        self.tag, self.acked, self.stop = tag, [], threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set():
            w = write("%s-%d" % (self.tag, i))
            if w:
                self.acked.append(w)
            else:
                time.sleep(0.05)
            i += 1

    def finish(self):
        self.stop.set()
        self.join(30)
        return self.acked


def restart_probe(env_extra=None):
    stack("stop-worker", "probe")
    env = dict(os.environ, **(env_extra or {}))
    subprocess.run([str(ROOT / "auto" / "stack"), "start-worker", "probe"],
                   env=env, check=True, capture_output=True, timeout=120)


def test_rollback_publishes_nothing():
    marker = "rollback-%d" % time.time_ns()
    assert write(marker, rollback=True) is None
    committed = write(marker + "-committed")
    assert committed
    # once the later, committed write is on Kafka, the relay (which sends
    # in commit order) is past the rolled-back one: read every partition
    # to its end, since a wrongly published event may be in any of them
    kafka_read(TOPIC, timeout=60,
               until=lambda ms: any(m["key"] == str(committed) for m in ms))
    msgs = kafka_read_all(TOPIC)
    values = [m["value"].get("value") for m in msgs if m["value"]]
    assert values.count(marker + "-committed") == 1, values[-20:]
    assert marker not in values


def test_steady_state_every_write_applied_once():
    acked = [write("steady-%d" % i) for i in range(50)]
    assert all(acked)
    assert_all_applied_once(acked)


def probe_log_lines():
    return (RUN_DIR / "log" / "probe.log").read_text(errors="replace").splitlines()


def test_relay_killed_between_ack_and_mark_sent():
    # the relay exits right after Kafka acknowledged a message and before the
    # row is marked sent: on restart that message is produced again (a
    # duplicate on Kafka) and the inbox must absorb it
    restart_probe({"ENCORE_FAULT_RELAY_EXIT_AFTER_ACK": "1"})
    pid = pid_of("probe")
    log_from = len(probe_log_lines())
    # writes may be refused once the process is dying: only the acknowledged
    # ones carry the promise
    tag = "fault-ack-%d-" % time.time_ns()
    acked = [w for w in (write(tag + str(i)) for i in range(5)) if w]
    assert acked, "the probe acknowledged no write before the fault"
    wait_gone(pid, timeout=60)
    # the fault fired (not some other exit): the relay said so, and what
    # it had delivered is on Kafka twice once the next relay sent it again
    fired = [l for l in probe_log_lines()[log_from:]
             if "relay: fault injection: exiting after" in l]
    assert len(fired) == 1, probe_log_lines()[log_from:][-20:]
    restart_probe()
    after = [write("after-ack-%d" % i) for i in range(5)]
    assert all(after)
    assert_all_applied_once(acked + after)
    # (by value: a write may have committed, been relayed and the process
    # gone before its answer was sent, so acknowledged to no one)
    msgs = kafka_read_all(TOPIC)
    copies = {}
    for m in msgs:
        if m["value"] and str(m["value"].get("value", "")).startswith(tag):
            copies[m["key"]] = copies.get(m["key"], 0) + 1
    assert 2 in copies.values(), "nothing was produced again: %r" % copies
    assert set(copies.values()) <= {1, 2}, copies
    assert {str(w) for w in acked} <= set(copies), (acked, copies)


def worker_counter(worker, name):
    """The sum of a counter's samples in a worker's own /metrics (0 when
    it has none yet: a fresh process counts from zero)."""
    r = worker_request(worker, "GET", "/metrics")
    assert r.status_code == 200, r.content
    total = 0.0
    for line in r.content.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_consumer_killed_between_commit_and_offset_commit():
    # the consumer exits right after the database commit of the 3rd event it
    # applied and before that event's offset commit: the next process gets
    # the event again and the inbox must make it a no-op
    log_from = len(probe_log_lines())
    restart_probe({"ENCORE_FAULT_CONSUMER_EXIT_AFTER_COMMIT": "3"})
    pid = pid_of("probe")
    tag = "fault-commit-%d-" % time.time_ns()
    acked = [w for w in (write(tag + str(i)) for i in range(10)) if w]
    assert acked, "the probe acknowledged no write before the fault"
    wait_gone(pid, timeout=60)
    lines = probe_log_lines()[log_from:]
    armed = [l for l in lines if "consumer: fault injection armed" in l]
    fired = [l for l in lines if "consumer: fault injection: exiting after" in l]
    assert len(armed) == 1 and len(fired) == 1, lines[-20:]
    restart_probe()
    after = [write("after-commit-%d" % i) for i in range(5)]
    assert all(after)
    assert_all_applied_once(acked + after)
    # the event whose offset was never committed came back to the new
    # process, which counted it as a duplicate instead of applying it
    wait_until(lambda: worker_counter("probe", "encore_consumer_duplicates_total") >= 1,
               timeout=60, what="the redelivered event skipped by the inbox")


# the fault tests wait up to 180 s for the backlog, past the default
# per-test limit (auto/test: --timeout)
@pytest.mark.timeout(600)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_broker_killed_or_frozen_under_load(sig):
    w = Writer("broker-%s" % sig.name)
    w.start()
    time.sleep(2)
    pid = signal_part("kafka", sig)
    time.sleep(5)
    if sig == signal.SIGSTOP:
        os.kill(pid, signal.SIGCONT)
    else:
        wait_gone(pid)
        stack("start-kafka")
    time.sleep(3)
    acked = w.finish()
    assert len(acked) > 10
    assert_all_applied_once(acked, timeout=180)


@pytest.mark.timeout(600)
def test_postgres_immediate_stop_under_load():
    w = Writer("pg-immediate")
    w.start()
    time.sleep(2)
    pg_immediate_stop()
    time.sleep(3)
    stack("start-postgres")
    time.sleep(5)
    acked = w.finish()
    assert len(acked) > 10
    # the worker reconnected by itself: new writes work
    assert write("after-pg-restart")
    assert_all_applied_once(acked, timeout=180)
