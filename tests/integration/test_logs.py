"""Worker logs on the stack: auto/stack gives every worker its log.file,
which SIGUSR1 reopens (log rotation: logrotate renames the file, then
postrotate sends SIGUSR1; README.md, Logs)."""
import signal

import requests

from conftest import RUN_DIR, signal_part, unique, url, wait_until


def test_sigusr1_reopens_the_worker_log_after_a_rename():
    log = RUN_DIR / "log" / "auth.log"
    # still *.log: the session's sanitizer scan reads it too
    rotated = RUN_DIR / "log" / ("auth.rotated-%s.log" % unique("r"))
    assert log.exists()

    log.rename(rotated)
    signal_part("auth", signal.SIGUSR1)
    wait_until(lambda: log.exists() and "log: reopened" in log.read_text(errors="replace"),
               timeout=10, what="a new auth.log")
    old = rotated.read_text(errors="replace")
    assert "log: reopening" in old
    assert "log: reopened" not in old

    # the worker goes on answering, and writes to the new file only
    assert requests.get(url("/api/v1/users/%s" % "00000000-0000-0000-0000-000000000000")).status_code == 404
    signal_part("auth", signal.SIGUSR1)
    wait_until(lambda: log.read_text(errors="replace").count("log: reopened") == 2,
               timeout=10, what="a second reopen in the same file")
    assert rotated.read_text(errors="replace") == old


def test_requests_are_not_logged_by_default():
    # nginx's access log has them; the worker's log.requests is off.  The
    # worker writes a request's line before it answers, so it would be
    # there by now
    log = RUN_DIR / "log" / "auth.log"
    probe = "/api/v1/users/%s" % "00000000-0000-0000-0000-0000000000aa"
    assert requests.get(url(probe)).status_code == 404
    assert probe not in log.read_text(errors="replace")
