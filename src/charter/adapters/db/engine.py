"""Engines by URL: SQLite in WAL mode for the embedded default, PostgreSQL for scale."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

import pydantic_core
from sqlalchemy import Connection, Engine, Select, create_engine, event
from sqlalchemy.engine import make_url

log = logging.getLogger("charter.db")

S = TypeVar("S", bound=Select[Any])


def sqlite_file(engine: Engine) -> str | None:
    """The database file of a SQLite engine; None for an in-memory one or another backend."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return database


def json_loads(text: str | bytes) -> Any:
    """A JSON column's value: parsed by pydantic-core's parser, several times quicker than the
    standard library's on the documents rows hold (a page of 50 packages reads 350 of them);
    a document it refuses, such as a string holding a lone surrogate escape that ``json.dumps``
    wrote, is read by the standard library as before."""
    try:
        return pydantic_core.from_json(text)
    except ValueError:
        return json.loads(text)


def json_dumps(value: Any) -> str:
    """A JSON column's text, written by pydantic-core's serializer (several times quicker than the
    standard library's on a package's seven documents); what it cannot write as UTF-8, such as a
    string holding a lone surrogate, the standard library writes as an escape."""
    try:
        return pydantic_core.to_json(value).decode()
    except (pydantic_core.PydanticSerializationError, UnicodeError):
        return json.dumps(value)


def make_engine(url: str, *, background_checkpoints: bool = False) -> Engine:
    """The engine ``url`` names. ``background_checkpoints``: SQLite's commits leave the WAL's
    checkpoints to a ``WalCheckpointer`` (which the caller runs) instead of taking one themselves."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               json_serializer=json_dumps, json_deserializer=json_loads)
        _sqlite_pragmas(engine, autocheckpoint=not background_checkpoints)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         json_serializer=json_dumps, json_deserializer=json_loads)


class WalCheckpointer:
    """Checkpoints of a SQLite database's write-ahead log, on a thread of their own.

    Left to itself, SQLite checkpoints inside whichever commit takes the WAL past 1,000 pages: that
    commit copies the pages back into the database file and syncs it, tens of milliseconds inside a
    request that otherwise commits in a fraction of one. A server's connections turn that off
    (``make_engine(…, background_checkpoints=True)``) and this thread checkpoints instead, after
    ``commits`` commits of this process or ``seconds`` after the last one, in two passes:

    - PASSIVE, beside the writers: it copies (and syncs) the bulk of the log;
    - PASSIVE again under the process's write lock (the one its SQLite writers queue on): only
      the few frames appended meanwhile are copied, and with no writer in the middle of a
      transaction the log is complete, so the next writer starts it over. The WAL stays as
      bounded as SQLite's own checkpoints keep it.

    A process that stops runs a last checkpoint.
    """

    def __init__(self, engine: Engine, write_lock: threading.Lock, *, commits: int = 64,
                 seconds: float = 1.0) -> None:
        database = sqlite_file(engine)
        if database is None:
            raise ValueError("WAL checkpoints are for a SQLite database file")
        self._path = database
        self._write_lock = write_lock
        self._commits, self._seconds = commits, seconds
        self._pending = 0
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="charter-wal-checkpoints", daemon=True)
        event.listen(engine, "commit", self._committed)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _committed(self, _connection: Any) -> None:
        with self._wake:
            self._pending += 1
            if self._pending >= self._commits:
                self._wake.notify()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            while True:
                with self._wake:
                    if not self._stopping and self._pending < self._commits:
                        self._wake.wait(self._seconds)
                    stopping, pending, self._pending = self._stopping, self._pending, 0
                if pending or stopping:
                    self._checkpoint(db)
                if stopping:
                    return
        finally:
            db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        started = time.monotonic()
        try:
            busy, frames, _copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            locked = 0.0
            if not busy and frames:
                with self._write_lock:
                    held = time.monotonic()
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    locked = time.monotonic() - held
        except sqlite3.Error as error:  # the next round tries again; the WAL only grows meanwhile
            log.warning("WAL checkpoint failed: %s", error)
            return
        log.debug("WAL checkpoint in %.1f ms (%d frames; %.1f ms holding the write lock)",
                  (time.monotonic() - started) * 1000, frames, locked * 1000)


def _sqlite_pragmas(engine: Engine, *, autocheckpoint: bool = True) -> None:
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
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers keep WAL's concurrent snapshots; only writers queue for the lock.
        # Straight on the driver's connection: the statement needs none of SQLAlchemy's execution
        # machinery, which costs more than SQLite takes to run it.
        readonly = connection.get_execution_options().get("charter_readonly", False)
        connection.connection.driver_connection.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")


def locking(conn: Connection, query: S, *, skip_locked: bool = False) -> S:
    """``query`` locking the rows it reads, where a lock means something: on PostgreSQL, in a
    unit of work that writes. SQLite's BEGIN IMMEDIATE already holds its one write lock, and a
    read-only unit of work reads its snapshot without locking (PostgreSQL refuses FOR UPDATE in a
    READ ONLY transaction): a runner's look for work takes no lock, and the claim that follows, in
    a unit of work that writes, does."""
    if conn.dialect.name == "sqlite" or conn.get_execution_options().get("postgresql_readonly"):
        return query
    return query.with_for_update(skip_locked=skip_locked)


def read_only(conn: Connection) -> Connection:
    """``conn`` set up for a unit of work that only reads.

    Every statement of the unit of work reads the same snapshot, so an aggregate read in several
    statements (an endpoint and its revisions, a card and its versions) is never torn by a commit
    landing between them:

    - SQLite: one deferred transaction, which reads one WAL snapshot from its first statement.
    - PostgreSQL: a REPEATABLE READ, READ ONLY transaction. At READ COMMITTED, the isolation
      Charter's writes run at, each statement takes a snapshot of its own: a reader saw an
      endpoint's revision In service and, from the statement before, nothing serving it yet.
      A read-only transaction never waits on writers and never fails to serialize.
    """
    if conn.dialect.name == "sqlite":
        return conn.execution_options(charter_readonly=True)
    return conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
