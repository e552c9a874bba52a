"""Backups: the metadata database and every account's blobs in one tar file, and back again.

A backup (``charter backup --out FILE``) is a gzip'd tar holding

- ``tables/<name>.jsonl``: every row of every table, one JSON object per line, all read in one
  read transaction (REPEATABLE READ on PostgreSQL, one WAL snapshot on SQLite): a consistent cut;
- ``blobs/<account>/<sha256>``: every blob of every account, read after the rows — blobs are
  immutable and never deleted, so each blob a row names is there (``--no-artifacts`` leaves them
  out, for an S3 bucket that has its own versioning and replication);
- ``manifest.json`` (last): the format, the schema revision, the dialect it came from, the row
  count and digest of each table file, the blob count, the audit head and the newest signed
  checkpoint with the id of the key that signed it.

A restore (``charter restore FILE``) goes into an empty database only: it migrates it to the
backup's revision, checks that this server's audit signing key is the one that signed the
backup's checkpoints (the key is a secret and is never in a backup), inserts every row in
foreign-key order in one transaction, puts every blob back (each verified against its digest),
makes the backup's newest checkpoint the witness, and then migrates to head. Rows are decoded by
their column's type, not by what the JSON looks like, so a backup of SQLite restores into
PostgreSQL: the way to move an embedded install onto a database server.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, Table, delete, func, insert, inspect, select
from sqlalchemy import types as sqltypes

from charter.adapters.db.migrate import upgrade
from charter.domain.audit import Checkpoint
from charter.errors import Conflict, IntegrityError, ValidationError
from charter.services.ports import ArtifactStore

FORMAT = "charter-backup/1"
MANIFEST = "manifest.json"
SKIPPED_TABLES = frozenset({"alembic_version"})
BATCH_ROWS = 1000

Progress = Callable[[str, int, int | None], None]
"""``progress(stage, done, total)``: called as a backup or restore goes (total None: unknown)."""


def _quiet(stage: str, done: int, total: int | None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class BackupSummary:
    path: Path
    revision: str
    dialect: str
    rows: dict[str, int]
    blobs: int
    bytes: int
    audit_head: int | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "revision": self.revision, "dialect": self.dialect,
                "tables": len(self.rows), "rows": sum(self.rows.values()), "blobs": self.blobs,
                "bytes": self.bytes, "audit_head": self.audit_head, "seconds": round(self.seconds, 2)}


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    revision: str
    from_dialect: str
    into_dialect: str
    rows: dict[str, int]
    blobs: int
    seconds: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "from": self.from_dialect, "into": self.into_dialect,
                "tables": len(self.rows), "rows": sum(self.rows.values()), "blobs": self.blobs,
                "seconds": round(self.seconds, 2), "notes": list(self.notes)}


# --- rows <-> JSON, by column type ----------------------------------------------------------------

def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot back up a value of type {type(value).__name__}")


def _decoder(column_type: sqltypes.TypeEngine[Any]) -> Callable[[Any], Any]:
    if isinstance(column_type, sqltypes.JSON):
        return lambda v: v
    if isinstance(column_type, sqltypes.DateTime):
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if isinstance(column_type, sqltypes.Date):
        return lambda v: None if v is None else date.fromisoformat(v)
    if isinstance(column_type, sqltypes.LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v)
    if isinstance(column_type, sqltypes.Numeric) and not isinstance(column_type, sqltypes.Float):
        return lambda v: None if v is None else Decimal(v)
    return lambda v: v


def _tables(conn: Any) -> list[Table]:
    reflected = MetaData()
    reflected.reflect(bind=conn)
    return [t for t in reflected.sorted_tables if t.name not in SKIPPED_TABLES]


def _revision(conn: Any) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


# --- backup ---------------------------------------------------------------------------------------

def _add(tar: tarfile.TarFile, name: str, source: Any, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(time.time()), 0o600
    tar.addfile(info, source)


def _audit_state(conn: Any) -> tuple[int | None, str | None, dict[str, Any] | None]:
    """The audit head and the newest checkpoint, read through the typed tables (UTC datetimes, so
    the checkpoint's signed message comes out as it was signed)."""
    from charter.adapters.db import tables as t

    head = conn.execute(select(t.audit_head.c.seq, t.audit_head.c.hash)).first()
    row = conn.execute(select(t.audit_checkpoints).order_by(t.audit_checkpoints.c.seq.desc()).limit(1)).first()
    checkpoint = Checkpoint(int(row.seq), row.hash, row.created_at, row.key_id, row.signature).to_dict() \
        if row is not None else None
    return (int(head.seq), str(head.hash), checkpoint) if head is not None else (None, None, checkpoint)


def write_backup(engine: Engine, store: ArtifactStore | None, out: Path, *,
                 progress: Progress = _quiet) -> BackupSummary:
    """Write a backup of ``engine``'s database (and, unless ``store`` is None, every account's
    blobs) to ``out``, atomically: a failed backup leaves no file behind."""
    started = time.perf_counter()
    out = out.absolute()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    tmp = Path(tmp_name)
    rows: dict[str, int] = {}
    digests: dict[str, str] = {}
    blob_count = blob_bytes = 0
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as tar:
            with engine.connect() as conn:
                conn = conn.execution_options(charter_readonly=True, **(
                    {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}))
                with conn.begin():
                    revision = _revision(conn)
                    if revision is None:
                        raise ValidationError("the database has no Charter schema: nothing to back up")
                    tables = _tables(conn)
                    by_name = {t.name: t for t in tables}
                    for i, table in enumerate(tables):
                        progress("tables", i, len(tables))
                        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
                            hasher, count = hashlib.sha256(), 0
                            for row in conn.execute(select(table)).mappings():
                                line = json.dumps(dict(row), default=_encode, separators=(",", ":")).encode() + b"\n"
                                hasher.update(line)
                                spool.write(line)
                                count += 1
                            size = spool.tell()
                            spool.seek(0)
                            _add(tar, f"tables/{table.name}.jsonl", spool, size)
                        rows[table.name], digests[table.name] = count, hasher.hexdigest()
                    progress("tables", len(tables), len(tables))
                    accounts = [r[0] for r in conn.execute(select(by_name["accounts"].c.name))] \
                        if "accounts" in by_name else []
                    head_seq, head_hash, checkpoint = _audit_state(conn)
            if store is not None:
                for account in accounts:
                    for sha in store.digests(account):
                        info = store.stat(account, sha)
                        if info is None:
                            continue
                        _add(tar, f"blobs/{account}/{sha}", _Reader(store.open(account, sha)), info.size)
                        blob_count += 1
                        blob_bytes += info.size
                        progress("blobs", blob_count, None)
            manifest = {
                "format": FORMAT, "revision": revision, "dialect": engine.dialect.name,
                "created_at": datetime.now().astimezone().isoformat(), "tables": rows, "sha256": digests,
                "artifacts": store is not None, "blobs": blob_count, "blob_bytes": blob_bytes,
                "audit": {"head_seq": head_seq, "head_hash": head_hash, "checkpoint": checkpoint},
            }
            data = json.dumps(manifest, default=_encode, indent=1).encode()
            _add(tar, MANIFEST, io.BytesIO(data), len(data))
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BackupSummary(out, revision, engine.dialect.name, rows, blob_count, out.stat().st_size,
                         head_seq, time.perf_counter() - started)


class _Reader(io.RawIOBase):
    """A file object over a verified chunk stream, for tarfile's ``addfile``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


# --- restore --------------------------------------------------------------------------------------

def read_manifest(path: Path) -> dict[str, Any]:
    try:
        with tarfile.open(path, mode="r:*") as tar:
            member = tar.getmember(MANIFEST)
            source = tar.extractfile(member)
            assert source is not None
            manifest: dict[str, Any] = json.loads(source.read())
    except (tarfile.TarError, KeyError, OSError, json.JSONDecodeError) as error:
        raise ValidationError(f"{path} is not a Charter backup ({error})", file=str(path)) from None
    if manifest.get("format") != FORMAT:
        raise ValidationError(f"{path} is a backup of format {manifest.get('format')!r}; this Charter "
                              f"reads {FORMAT}", file=str(path))
    return manifest


def _empty(conn: Any) -> bool:
    """No organization and no account: reflects only those two tables."""
    present = sorted(set(inspect(conn).get_table_names()) & {"organization", "accounts"})
    reflected = MetaData()
    reflected.reflect(bind=conn, only=present)
    return all(conn.execute(select(func.count()).select_from(reflected.tables[name])).scalar() == 0
               for name in present)


def restore_backup(engine: Engine, store: ArtifactStore, path: Path, *, key_id: str | None,
                   witness: Callable[[Checkpoint], None], progress: Progress = _quiet) -> RestoreSummary:
    """Restore the backup at ``path`` into ``engine``'s (empty) database and ``store``; see the
    module's docstring. ``key_id`` is the id of this server's audit signing key (None: none yet)."""
    started = time.perf_counter()
    manifest = read_manifest(path)
    revision = str(manifest["revision"])
    checkpoint = (manifest.get("audit") or {}).get("checkpoint")
    if checkpoint is not None and checkpoint.get("key_id") != key_id:
        raise Conflict(f"the backup's audit checkpoints are signed by key {checkpoint.get('key_id')}, and this "
                       f"server's signing key is {key_id or 'not there yet'}: copy the key file of the server "
                       "the backup came from first (docs/operations.md, key management)",
                       backup_key=checkpoint.get("key_id"), server_key=key_id)
    with engine.connect() as conn:
        current = _revision(conn)
        if current is not None:
            if not _empty(conn):
                raise Conflict("the database already holds an organization: a backup is restored into an "
                               "empty database only", revision=current)
            if current != revision:
                raise Conflict(f"the empty database is at schema revision {current} and the backup at "
                               f"{revision}: restore into a new database", revision=current)
    upgrade(engine, revision)
    rows: dict[str, int] = {}
    blobs = 0
    with tarfile.open(path, mode="r:*") as tar, engine.connect() as conn:
        with conn.begin():
            tables = {t.name: t for t in _tables(conn)}
            expected = dict(manifest["tables"])
            unknown = sorted(set(expected) - set(tables))
            if unknown:
                raise ValidationError(f"the backup holds tables this schema does not have: {', '.join(unknown)}")
            order = [t for t in tables.values() if t.name in expected]
            # What the migrations seeded (the audit head's first row, built-in rows) gives way to
            # the backup's rows: the database holds no organization, so nothing else is lost.
            for table in reversed(list(tables.values())):
                conn.execute(delete(table))
            for i, table in enumerate(order):
                progress("tables", i, len(order))
                rows[table.name] = _load_table(conn, tar, table, manifest["sha256"][table.name])
                if rows[table.name] != expected[table.name]:
                    raise IntegrityError(f"table {table.name}: the backup lists {expected[table.name]} rows "
                                         f"and holds {rows[table.name]}", table=table.name)
            progress("tables", len(order), len(order))
            for member in tar:
                if not member.name.startswith("blobs/"):
                    continue
                _, account, sha = member.name.split("/", 2)
                source = tar.extractfile(member)
                if source is None or not member.isfile():
                    raise ValidationError(f"backup member {member.name} is not a file")
                store.put(account, iter(functools.partial(source.read, 1024 * 1024), b""), expected_sha256=sha)
                blobs += 1
                progress("blobs", blobs, int(manifest.get("blobs") or 0) or None)
    notes = []
    if checkpoint is not None:
        witness(Checkpoint.from_dict(checkpoint))
        notes.append(f"the witness is the backup's newest checkpoint (seq {checkpoint.get('seq')})")
    upgrade(engine)
    if not manifest.get("artifacts"):
        notes.append("the backup holds no blobs (made with --no-artifacts): the artifact store must "
                     "still hold them")
    return RestoreSummary(revision, str(manifest["dialect"]), engine.dialect.name, rows, blobs,
                          time.perf_counter() - started, tuple(notes))


def _load_table(conn: Any, tar: tarfile.TarFile, table: Table, digest: str) -> int:
    member = tar.getmember(f"tables/{table.name}.jsonl")
    source = tar.extractfile(member)
    if source is None:
        raise ValidationError(f"backup member {member.name} is not a file")
    decoders = {c.name: _decoder(c.type) for c in table.columns}
    hasher, count, batch = hashlib.sha256(), 0, []
    for line in source:
        hasher.update(line)
        row = json.loads(line)
        unknown = set(row) - set(decoders)
        if unknown:
            raise ValidationError(f"table {table.name} in the backup has columns this schema does not: "
                                  f"{', '.join(sorted(unknown))}", table=table.name)
        batch.append({k: decoders[k](v) for k, v in row.items()})
        count += 1
        if len(batch) >= BATCH_ROWS:
            conn.execute(insert(table), batch)
            batch = []
    if batch:
        conn.execute(insert(table), batch)
    if hasher.hexdigest() != digest:
        raise IntegrityError(f"table {table.name} in the backup does not match its digest: the file was "
                             "changed or damaged", table=table.name)
    return count
