"""Engines by URL: SQLite in WAL mode for the embedded default, PostgreSQL for scale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic_core
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url


def json_loads(text: str | bytes) -> Any:
    """A JSON column's value: parsed by pydantic-core's parser, several times quicker than the
    standard library's on the documents rows hold (a page of 50 packages reads 350 of them);
    a document it refuses, such as a string holding a lone surrogate escape that ``json.dumps``
    wrote, is read by the standard library as before."""
    try:
        return pydantic_core.from_json(text)
    except ValueError:
        return json.loads(text)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               json_deserializer=json_loads)
        _sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, json_deserializer=json_loads)


def _sqlite_pragmas(engine: Engine) -> None:
    # pysqlite opens transactions lazily and as DEFERRED, so two writers can deadlock on the lock
    # upgrade. Take the write lock up front (BEGIN IMMEDIATE) and let SQLite's busy timeout queue
    # writers instead.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers keep WAL's concurrent snapshots; only writers queue for the lock.
        readonly = connection.get_execution_options().get("charter_readonly", False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def read_only(conn: Connection) -> Connection:
    """``conn`` set up for a unit of work that only reads.

    - SQLite: one deferred transaction, so every statement reads the same WAL snapshot.
    - PostgreSQL: no transaction at all. Under READ COMMITTED, the isolation Charter runs at,
      every statement takes its own snapshot whether or not a transaction holds them together,
      so the BEGIN and ROLLBACK around a read would be two round trips that change nothing.
    """
    if conn.dialect.name == "sqlite":
        return conn.execution_options(charter_readonly=True)
    return conn.execution_options(isolation_level="AUTOCOMMIT")
