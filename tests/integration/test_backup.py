"""Backups: the database and every blob in one file, restored into an empty database — SQLite or
PostgreSQL, whichever the backup came from — with the audit trail still verifying."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from charter.bootstrap import Platform, backup, bootstrap, restore
from charter.config import Settings
from charter.domain import commands as c
from charter.errors import Conflict, IntegrityError, ValidationError
from tests.integration.conftest import Org
from tests.models import skops_model


def _state(org: Org) -> tuple[str, int]:
    sam, lena = org.identity("sam"), org.identity("lena")
    blob = org.bus.handle(c.UploadArtifact("ml-dev", iter([skops_model()]), 10**7), sam)
    org.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn"), lena)
    package = org.bus.handle(c.RegisterModelPackage("ml-dev", "churn", "skops",
                                                    (c.ArtifactRef("model.skops", blob.sha256),)), sam)
    org.bus.handle(c.DecideModelPackage("ml-dev", "churn", package.version, "Approved", "ok"), lena)
    org.bus.checkpoint()
    return blob.sha256, package.version


def _target(tmp_path: Path, source: Settings, database_url: str, name: str = "restored") -> Settings:
    """A second installation: its own data dir and database, and the source's signing key (the key
    is a secret that never goes into a backup; docs/operations.md)."""
    target = Settings(data_dir=tmp_path / name, database_url=database_url)
    key = target.resolved_audit_key_file
    key.parent.mkdir(parents=True)
    shutil.copy(source.resolved_audit_key_file, key)
    return target


def _verify(settings: Settings) -> tuple[bool, int]:
    platform = bootstrap(settings)
    try:
        with platform.bus.uow_factory(readonly=True) as uow:
            result = platform.bus.trail.verify(uow)
        return result.ok, result.records
    finally:
        platform.close()


def test_a_restored_backup_holds_the_packages_and_blobs_and_its_audit_trail_verifies(
        org: Org, platform: Platform, settings: Settings, tmp_path: Path) -> None:
    sha, version = _state(org)
    with platform.bus.uow_factory(readonly=True) as uow:
        records = platform.bus.trail.verify(uow).records
    summary = backup(settings, tmp_path / "acme.tar.gz")
    assert summary.blobs >= 1 and summary.rows["model_packages"] == 1 and summary.audit_head == records

    target = _target(tmp_path, settings, f"sqlite:///{tmp_path / 'restored.db'}")
    restored = restore(target, tmp_path / "acme.tar.gz")
    assert restored.rows == summary.rows and restored.blobs == summary.blobs

    assert _verify(target) == (True, records)
    copy = bootstrap(target)
    try:
        with copy.bus.uow_factory(readonly=True) as uow:
            package = uow.registry.get_package("ml-dev", "churn", version)
        assert package is not None and str(package.status) == "Approved"
        assert b"".join(copy.artifacts.open("ml-dev", sha)) == skops_model()
    finally:
        copy.close()


@pytest.mark.postgres
def test_a_backup_of_sqlite_restores_into_postgresql(org: Org, settings: Settings, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    from tests.integration.conftest import PG_URL, _drop_postgres_database, _fresh_postgres_database

    if not PG_URL or not settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("SQLite into PostgreSQL: needs CHARTER_TEST_DATABASE_URL, runs once (the SQLite side)")
    _state(org)
    backup(settings, tmp_path / "acme.tar.gz")
    url = _fresh_postgres_database(PG_URL)
    request.addfinalizer(lambda: _drop_postgres_database(url))
    target = _target(tmp_path, settings, url)
    restored = restore(target, tmp_path / "acme.tar.gz")
    assert (restored.from_dialect, restored.into_dialect) == ("sqlite", "postgresql")
    ok, records = _verify(target)
    assert ok and records > 0


def test_restore_refuses_a_database_that_holds_an_organization(org: Org, settings: Settings,
                                                               tmp_path: Path) -> None:
    _state(org)
    backup(settings, tmp_path / "acme.tar.gz")
    with pytest.raises(Conflict, match="already holds an organization"):
        restore(settings, tmp_path / "acme.tar.gz")


def test_restore_refuses_a_server_whose_signing_key_did_not_sign_the_backup(
        org: Org, settings: Settings, tmp_path: Path) -> None:
    _state(org)
    backup(settings, tmp_path / "acme.tar.gz")
    stranger = Settings(data_dir=tmp_path / "stranger", database_url=f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(Conflict, match="copy the key file"):
        restore(stranger, tmp_path / "acme.tar.gz")
    assert not (tmp_path / "s.db").exists() or _tables_empty(tmp_path / "s.db")


def _tables_empty(path: Path) -> bool:
    import sqlite3

    with sqlite3.connect(path) as db:
        return not db.execute("select name from sqlite_master where type='table'").fetchall()


def test_a_damaged_backup_is_refused_and_leaves_the_target_database_without_rows(
        org: Org, settings: Settings, tmp_path: Path) -> None:
    _state(org)
    backup(settings, tmp_path / "acme.tar.gz")
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(tmp_path / "acme.tar.gz") as src, tarfile.open(damaged, "w:gz") as out:
        for member in src:
            data = src.extractfile(member)
            assert data is not None
            content = data.read()
            if member.name == "tables/model_packages.jsonl":
                content = content.replace(b'"Approved"', b'"Rejected"')
            member.size = len(content)
            out.addfile(member, __import__("io").BytesIO(content))
    target = _target(tmp_path, settings, f"sqlite:///{tmp_path / 'restored.db'}")
    with pytest.raises(IntegrityError, match="model_packages"):
        restore(target, damaged)
    import sqlite3

    with sqlite3.connect(tmp_path / "restored.db") as db:
        assert db.execute("select count(*) from accounts").fetchone() == (0,)


def test_a_file_that_is_not_a_backup_is_refused_by_name(settings: Settings, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar")
    with pytest.raises(ValidationError, match="is not a Charter backup"):
        restore(settings, junk)
