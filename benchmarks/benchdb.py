"""The benchmarks' own PostgreSQL databases: each script names one (`--database`)
and makes it on first use, so a run never touches carebell's or the suite's."""

from __future__ import annotations


def ensure_database(server: str, name: str) -> None:
    """Create database `name` on `server` (a postgres:// URL without a database)
    unless it exists; migrating it is the caller's."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def vacuum_analyze(url: str) -> None:
    """What autovacuum does for a live database, done before a timed run: statistics
    of what earlier runs added (else the planner takes a grown table for an empty
    one) and their dead rows cleared. The machine the figures were taken on runs
    PostgreSQL with autovacuum off."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


#: The PostgreSQL backends serving this database, but the asking connection's own.
_BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid()"
)


def backend_pids(cursor) -> list[int]:
    """The process ids of the PostgreSQL backends of the cursor's database, but its
    own (a psycopg or Django cursor): whose CPU a benchmark counts."""
    cursor.execute(_BACKENDS)
    return [pid for (pid,) in cursor.fetchall()]
