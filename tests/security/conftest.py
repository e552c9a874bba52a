"""The attack regression suite: each module tries one class of attack, in many encodings, against
the real application (a real bootstrap on SQLite in a temporary directory, the FastAPI app over it)
and checks the three things a defender relies on: the request is refused with a 4xx, nothing
changed, and the refusal is in the audit trail where the request reached the message bus.

What "nothing changed" means is made concrete by :class:`Snapshot`: every row of every table but the
audit trail's own, and every file of the artifact store. The audit trail is checked separately, as
the one thing a refusal is expected to add to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from charter.adapters.db import tables
from charter.bootstrap import Platform, bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.domain.commands import AuditFilter, PageRequest
from charter.entrypoints.api.app import create_app
from tests.integration.conftest import Org, auth

__all__ = ["Org", "Snapshot", "Trail", "auth", "refused"]

AUDIT_TABLES = {"audit_records", "audit_head", "audit_checkpoints", "alembic_version"}
MAX_REQUEST_BYTES = 64 * 1024
PAGE_SIZE_MAX = 100


PERSONAS = ("lena", "sam", "mei", "grace", "arthur", "priya", "diego", "promotion-bot")


# One organization per module: an attack that is refused changes nothing, so the tests of a module
# share it (and each checks that it is unchanged), which keeps hundreds of encodings cheap.
@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("security")
    return Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'charter.db'}",
                    audit_checkpoint_every=8, max_request_bytes=MAX_REQUEST_BYTES,
                    page_size_max=PAGE_SIZE_MAX)


@pytest.fixture(scope="module")
def platform(settings: Settings) -> Iterator[Platform]:
    p = bootstrap(settings)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def org(platform: Platform) -> Org:
    made = Org(platform)
    for name in PERSONAS:  # tokens made up front, so that no attack's snapshot sees one appear
        made.bearer(name)
    return made


@pytest.fixture(scope="module")
def api(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        yield client


@dataclass(frozen=True)
class Snapshot:
    """Everything a request could change, but the audit trail: rows of every table, stored files."""

    rows: dict[str, list[tuple[Any, ...]]]
    files: dict[str, str]

    @classmethod
    def of(cls, platform: Platform) -> Snapshot:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        with platform.engine.connect() as conn:
            for name in sorted(tables.metadata.tables):
                if name in AUDIT_TABLES:
                    continue
                rows[name] = sorted((tuple(r) for r in conn.execute(text(f'SELECT * FROM "{name}"'))), key=repr)
        files: dict[str, str] = {}
        for root in (platform.settings.data_dir / "artifacts", platform.settings.data_dir / "pipelines"):
            if root.exists():
                for path in sorted(root.rglob("*")):
                    if path.is_file() and not path.is_symlink():
                        files[str(path.relative_to(platform.settings.data_dir))] = hashlib.sha256(
                            path.read_bytes()).hexdigest()
        return cls(rows, files)

    def diff(self, other: Snapshot) -> list[str]:
        out = [f"table {t}" for t in sorted(set(self.rows) | set(other.rows))
               if self.rows.get(t) != other.rows.get(t)]
        out += [f"file {f}" for f in sorted(set(self.files) ^ set(other.files))]
        out += [f"file {f} changed" for f in sorted(set(self.files) & set(other.files))
                if self.files[f] != other.files[f]]
        return out


class Trail:
    """The audit trail as an auditor reads it: records after a mark, and the chain's verdict."""

    def __init__(self, org: Org) -> None:
        self.org = org

    def records(self, after: int = 0, **filters: Any) -> list[Any]:
        out: list[Any] = []
        cursor: str | None = str(after) if after else None
        while True:
            page = self.org.bus.handle(c.ListAudit(AuditFilter(**filters), PageRequest(after=cursor, limit=500)),
                                       self.org.admin)
            out.extend(page.items)
            cursor = page.next_after
            if cursor is None:
                return out

    def head(self) -> int:
        with self.org.platform.engine.connect() as conn:
            return int(conn.execute(text("SELECT max(seq) FROM audit_records")).scalar() or 0)

    def since(self, seq: int) -> list[Any]:
        return self.records(after=seq)

    def verify(self) -> Any:
        return self.org.bus.handle(c.VerifyAudit(), self.org.admin)


@pytest.fixture(scope="module")
def trail(org: Org) -> Trail:
    return Trail(org)


def refused(response: Any, *statuses: int) -> dict[str, Any]:
    """The error body of a refused response; fails unless it is a 4xx (one of ``statuses`` when
    given) in the one error shape."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"} and {"type", "message"} <= set(body["error"]), body
    return body["error"]  # type: ignore[no-any-return]


class Attack:
    """One attempt, checked: ``with attack() as seen:`` takes a snapshot and marks the trail; on
    exit it fails if anything but the trail changed, and ``seen.records`` holds what was audited."""

    def __init__(self, platform: Platform, trail: Trail) -> None:
        self.platform = platform
        self.trail = trail
        self.records: list[Any] = []

    def __enter__(self) -> Attack:
        self._before = Snapshot.of(self.platform)
        self._mark = self.trail.head()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        changed = self._before.diff(Snapshot.of(self.platform))
        assert not changed, f"a refused attack changed {changed}"
        self.records = self.trail.since(self._mark)

    def assert_audited(self, *, actor: str | None = None, outcomes: tuple[str, ...] = ("denied", "failed")) -> Any:
        """The refusal's record: one with a refusing outcome (by ``actor`` when given)."""
        found = [r for r in self.records if str(r.outcome) in outcomes and (actor is None or r.actor == actor)]
        assert found, f"the refusal was not audited; new records: {[(r.action, str(r.outcome)) for r in self.records]}"
        return found[-1]


@pytest.fixture
def attack(platform: Platform, trail: Trail) -> Any:
    return lambda: Attack(platform, trail)
