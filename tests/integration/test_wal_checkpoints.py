"""SQLite's WAL checkpoints run on the server's own thread, never inside a request's commit, and
keep the write-ahead log as bounded as SQLite's own would."""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from charter.bootstrap import bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.domain.identity import Identity

ADMIN = Identity("admin", "test")


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, config_dir=tmp_path / "config", audit_key_file=tmp_path / "audit.key")


def test_a_request_commit_takes_no_checkpoint_and_the_server_thread_takes_them(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="charter.db")
    platform = bootstrap(_settings(tmp_path))
    try:
        assert platform.checkpoints is not None
        with platform.engine.connect() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        platform.bus.handle(c.InitOrg("acme"), ADMIN)
        for n in range(300):  # about 2,000 WAL frames: without checkpoints the log would hold them all
            platform.bus.handle(c.CreateToken("admin", description=f"t{n}"), ADMIN)
        deadline = time.monotonic() + 10
        while not any("WAL checkpoint in" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "no checkpoint ran after 300 commits"
            time.sleep(0.05)
        platform.bus.handle(c.CreateToken("admin", description="after"), ADMIN)  # starts the log over
        with closing(sqlite3.connect(tmp_path / "charter.db")) as db:
            _busy, frames, _copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # frames in the log
        assert frames < 1000, f"the WAL holds {frames} frames: SQLite's own checkpoints keep it under 1,000"
    finally:
        platform.close()
    assert not platform.checkpoints.running


def test_only_a_sqlite_file_gets_a_wal_checkpointer(settings: Settings) -> None:
    platform = bootstrap(settings)
    try:
        assert (platform.checkpoints is None) == (platform.engine.dialect.name != "sqlite")
    finally:
        platform.close()
