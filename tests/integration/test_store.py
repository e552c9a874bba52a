"""The SQL store: migrations, transactions, and the audit chain under concurrency, on each backend."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, text

from charter.adapters.db.tables import metadata
from charter.bootstrap import Platform, bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.domain.org import BusPolicy, EventRule, EventTarget, RoleBinding, TargetKind
from charter.errors import ValidationError
from tests.conftest import EXAMPLE
from tests.integration.conftest import Org


def test_migrations_create_exactly_the_declared_schema(platform: Platform) -> None:
    with platform.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode(platform: Platform) -> None:
    if platform.engine.dialect.name != "sqlite":
        return
    with platform.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_apply_is_idempotent(org: Org) -> None:
    again = org.bus.handle(c.ApplyOrg(EXAMPLE.read_text()), org.admin)
    assert again.changes == []


def test_a_refused_apply_changes_nothing_on_disk(org: Org) -> None:
    bad = EXAMPLE.read_text().replace("ou: deployments", "ou: nowhere", 1) + "\n"
    before = org.bus.handle(c.GetOrg(), org.admin).state
    try:
        org.bus.handle(c.ApplyOrg(bad.replace("  - name: sam\n", "  - name: sam2\n  - name: sam\n"), "x.yaml"),
                       org.admin)
        raise AssertionError("apply should have been refused")
    except ValidationError as refused:
        assert refused.details["file"] == "x.yaml"
        assert any(p["field"] == "accounts[ml-test].ou" for p in refused.details["problems"])
    assert org.bus.handle(c.GetOrg(), org.admin).state == before


def test_concurrent_audited_writes_keep_one_gap_free_chain(org: Org) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                org.bus.handle(c.CreateToken("lena"), org.admin)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = org.bus.handle(c.VerifyAudit(), org.admin)
    assert result.ok, result.reason
    page = org.bus.handle(c.ListAudit(c.AuditFilter(action="iam:CreateToken"), c.PageRequest(limit=500)), org.admin)
    assert len(page.items) == 30
    seqs = [r.seq for r in org.bus.handle(c.ListAudit(page=c.PageRequest(limit=500)), org.admin).items]
    assert seqs == list(range(1, len(seqs) + 1))


def test_checkpoints_are_signed_with_the_key_outside_the_database(org: Org, platform: Platform) -> None:
    for _ in range(10):
        org.bus.handle(c.CreateToken("lena"), org.admin)
    key_file = platform.settings.resolved_audit_key_file
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert platform.settings.audit_witness_file.exists()
    result = org.bus.handle(c.VerifyAudit(), org.admin)
    assert result.ok and result.checkpoints >= 1


def test_restarting_on_the_same_database_keeps_the_organization(platform: Platform, org: Org) -> None:
    from charter.bootstrap import bootstrap

    again = bootstrap(platform.settings)
    try:
        identity = again.bus.authenticate(org.admin_bearer)
        assert again.bus.handle(c.VerifyAudit(), identity).ok
        assert {a.name for a in again.bus.handle(c.ListAccounts(), identity).items} >= {"ml-dev", "ml-prod"}
    finally:
        again.close()


def test_what_something_else_manages_survives_a_later_apply(org: Org) -> None:
    made = "project:ml-dev/churn"
    rule = EventRule("ml-dev", "churn-approved", '{"source":["ml-dev"]}',
                     (EventTarget(TargetKind.HANDLER, "audit-log"),), managed_by=made)
    binding = RoleBinding("sam", "ml-test", "data-scientist", managed_by=made)
    with org.bus.uow_factory() as uow:
        uow.org.put_rule(rule)
        uow.org.add_binding(binding)
        uow.org.put_bus_policy(BusPolicy("ml-test", ("ml-dev",), managed_by=made))
        uow.commit()
    again = org.bus.handle(c.ApplyOrg(EXAMPLE.read_text()), org.admin)
    assert again.changes == []
    with org.bus.uow_factory(readonly=True) as uow:
        state = uow.org.load_state()
    assert state.rules[rule.key] == rule and state.bus_policies["ml-test"].managed_by == made
    assert [b.managed_by for b in state.bindings if b == binding] == [made]


def test_two_processes_appending_in_turn_keep_one_gap_free_chain(org: Org, settings: Settings) -> None:
    """Each process appends from the head it last committed, unread; the head row's update is
    conditional on it, so an append after the other process's is made again from the real head."""
    other = bootstrap(settings)  # another server process on the same database: its own engine and caches
    try:
        admin = org.bearer("admin")
        org.bus.handle(c.CreateToken("lena"), org.admin)
        statements = _statements(org.platform)
        for _ in range(3):
            org.bus.handle(c.CreateToken("lena"), org.admin)
            org.bus.handle(c.CreateToken("lena"), org.admin)  # the head this process just committed
            other.bus.handle(c.CreateToken("sam"), bearer=admin)
        result = other.bus.handle(c.VerifyAudit(), org.admin)
        assert result.ok, result.reason
        records = org.bus.handle(c.ListAudit(page=c.PageRequest(limit=500)), org.admin).items
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        assert [r.details.get("principal") for r in records[-9:] if r.action == "iam:CreateToken"] == [
            "lena", "lena", "sam"] * 3
        # this process read the head row only in the two turns that followed the other's append
        assert sum("FROM audit_head" in s for s in statements) == 2
    finally:
        other.close()


def _statements(platform: Platform) -> list[str]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(platform.engine, "before_cursor_execute", record)
    return seen


def test_verifying_walks_the_trail_across_its_pages(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    from charter.adapters.db import store

    monkeypatch.setattr(store, "AUDIT_PAGE", 3)  # a page per three records instead of 2,000
    for _ in range(10):
        org.bus.handle(c.CreateToken("lena"), org.admin)
    listed = org.bus.handle(c.ListAudit(page=c.PageRequest(limit=500)), org.admin).items
    result = org.bus.handle(c.VerifyAudit(), org.admin)
    assert result.ok, result.reason
    assert result.records == len(listed) > 10


def test_a_read_only_unit_of_work_reads_one_snapshot(org: Org) -> None:
    """A reader never sees a commit land between two of its statements: an aggregate read in
    several (an endpoint and its revisions, a card and its versions) is never torn."""
    everything = c.AuditFilter()
    with org.bus.uow_factory(readonly=True) as uow:
        before = uow.audit.find(everything, None, 10_000)
        org.bus.handle(c.CreateToken("sam"), org.admin)  # commits in a unit of work of its own
        during = uow.audit.find(everything, None, 10_000)
    assert during == before
    with org.bus.uow_factory(readonly=True) as uow:
        assert len(uow.audit.find(everything, None, 10_000)) > len(before)
