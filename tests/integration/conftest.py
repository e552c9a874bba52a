"""The integration tier runs unchanged on SQLite and, when CHARTER_TEST_DATABASE_URL is set, on
PostgreSQL. In CI (CI=true) PostgreSQL is required: a missing server fails the run, never skips."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from charter.bootstrap import Platform, bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.domain.identity import Identity
from charter.entrypoints.api.app import create_app
from tests.conftest import EXAMPLE

PG_URL = os.environ.get("CHARTER_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _fresh_postgres_database(base_url: str) -> str:
    """A new, empty database on the test server, so tests (and xdist workers) never share state."""
    url = make_url(base_url)
    name = f"charter_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database=make_url(PG_URL or "").database), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'charter.db'}"
        return
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI must run the integration tier on PostgreSQL: set CHARTER_TEST_DATABASE_URL")
        pytest.skip("CHARTER_TEST_DATABASE_URL is not set")
    url = _fresh_postgres_database(PG_URL)
    try:
        yield url
    finally:
        _drop_postgres_database(url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, audit_checkpoint_every=8,
                    max_request_bytes=64 * 1024, page_size_max=100)


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    p = bootstrap(settings)
    try:
        yield p
    finally:
        p.close()


class Org:
    """The example organization on a real store, with bearer tokens for each persona."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.bus = platform.bus
        init = self.bus.handle(c.InitOrg("acme"), Identity("system", "test"))
        self.admin_bearer = init.bearer
        self.admin = self.bus.authenticate(init.bearer)
        self.bus.handle(c.ApplyOrg(EXAMPLE.read_text()), self.admin)
        self._bearers: dict[str, str] = {"admin": init.bearer}

    def bearer(self, principal: str) -> str:
        if principal not in self._bearers:
            self._bearers[principal] = self.bus.handle(c.CreateToken(principal), self.admin).bearer
        return self._bearers[principal]

    def identity(self, principal: str) -> Identity:
        return self.bus.authenticate(self.bearer(principal))


@pytest.fixture
def org(platform: Platform) -> Org:
    return Org(platform)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        yield client


def auth(bearer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer}"}
