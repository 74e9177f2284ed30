"""The benches' own PostgreSQL databases, on the server of DATABASE_URL (default: local PostgreSQL): a bench seeds
a database of its own, so it never touches the app's data, and drops it at the end unless told to keep it."""

from __future__ import annotations

import os

SERVER = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]


def database_url(name: str) -> str:
    return f"{SERVER}/{name}"


def database_ensure(name: str, *, drop: bool) -> bool:
    """Create the database `name`, dropped first when `drop`; True when it was there already (a kept, seeded
    copy that the bench may reuse)."""
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and drop:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return bool(exists)


def database_drop(name: str) -> None:
    """Drop the database `name`, closing this process's connections to it first when Django holds any."""
    import psycopg
    from django.conf import settings
    from django.db import connections

    if settings.configured:  # else this process never connected through Django
        connections.close_all()
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SMOKE_HELP = (
    "tiny sizes, to check that the script still runs end to end (tests/test_benches.py runs every bench so); "
    "its figures mean nothing. A database bench uses a database of its own, NAME_smoke, so a kept full-size "
    "one survives"
)


def bench_name(name: str, *, smoke: bool) -> str:
    """The bench database's name: `name`, or `name`_smoke for a smoke run."""
    return f"{name}_smoke" if smoke else name


def database_use(name: str, *, smoke: bool = False) -> str:
    """Point this process's Django (before django.setup()) at the bench database `name`, or `name`_smoke for a
    smoke run; returns the name used."""
    name = bench_name(name, smoke=smoke)
    os.environ["DATABASE_URL"] = database_url(name)
    return name
