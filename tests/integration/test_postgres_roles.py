"""Least privilege in PostgreSQL: each worker's role sees its own schema
only (ARCHITECTURE.md: schema per worker, enforced by roles)."""
import subprocess

from conftest import PG_PORT, RUN_DIR


def psql_as(worker, sql):
    password = (RUN_DIR / "secrets" / ("pg-%s.password" % worker)).read_text().strip()
    return subprocess.run(
        ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "encore_" + worker,
         "-d", "encore", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql],
        env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True)


def test_role_reads_its_own_schema():
    r = psql_as("auth", "SELECT count(*) >= 0 FROM users")
    assert r.returncode == 0, r.stderr


def test_role_is_refused_another_schema():
    r = psql_as("probe", "SELECT count(*) FROM auth.users")
    assert r.returncode != 0
    assert "permission denied for schema auth" in r.stderr


def test_role_cannot_create_in_public_or_other_schema():
    r = psql_as("probe", "CREATE TABLE public.sneaky(x int)")
    assert r.returncode != 0 and "permission denied" in r.stderr
    r = psql_as("probe", "CREATE TABLE auth.sneaky(x int)")
    assert r.returncode != 0 and "permission denied" in r.stderr


def test_wrong_password_is_refused():
    r = subprocess.run(
        ["psql", "-X", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "encore_auth", "-d", "encore",
         "-c", "SELECT 1"], env={"PGPASSWORD": "not-the-password", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True)
    assert r.returncode != 0 and "password authentication failed" in r.stderr


def test_password_files_are_private():
    for f in (RUN_DIR / "secrets").glob("pg-*.password"):
        assert f.stat().st_mode & 0o077 == 0, f


def test_only_search_creates_temporary_tables():
    # encore-search rebuild shadows its tables with temporary ones
    r = psql_as("search", "CREATE TEMP TABLE shadow (x int)")
    assert r.returncode == 0, r.stderr
    r = psql_as("probe", "CREATE TEMP TABLE shadow (x int)")
    assert r.returncode != 0 and "permission denied" in r.stderr


def test_search_reaches_its_extensions():
    # pg_trgm and fuzzystrmatch in ext, unaccent too (database.sql)
    r = psql_as("search", "SELECT ext.similarity('metallica', 'metalica') > 0.5,"
                          " ext.levenshtein_less_equal('metallica', 'metalica', 1)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "t|1", r.stdout
