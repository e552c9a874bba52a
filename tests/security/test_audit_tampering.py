"""Audit tampering through the database: every column of a record changed, a record deleted, two
swapped, the newest truncated — each is named by `audit verify`; and no API route edits the trail.
(The same attacks through the CLI against a real server are in tests/e2e/test_audit_tampering.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from charter.domain import commands as c

from .conftest import Org, auth, refused

COLUMNS = {"time": "2020-01-01 00:00:00.000000", "actor": "mallory", "via": "forged", "account": "ml-prod",
           "action": "registry:ApproveModelPackage", "resource": "crn:charter:ml-dev:registry:model-package/x/1",
           "outcome": "allowed", "policy": "forged-policy", "request_id": "forged",
           "details": '{"forged": true}', "prev_hash": "0" * 64, "hash": "f" * 64, "id": "forged-id"}


@pytest.fixture
def victim(org: Org) -> Iterator[dict[str, Any]]:
    """A record in the middle of the trail, put back as it was after the test."""
    with org.platform.engine.connect() as conn:
        head = int(conn.execute(text("SELECT max(seq) FROM audit_records")).scalar() or 0)
        row = conn.execute(text("SELECT * FROM audit_records WHERE seq = :s"), {"s": head // 2}).mappings().one()
    saved = dict(row)
    yield saved
    with org.platform.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq = :seq"), saved)
        conn.execute(text(f"INSERT INTO audit_records ({', '.join(saved)}) VALUES "
                          f"({', '.join(':' + k for k in saved)})"), saved)
    assert org.bus.handle(c.VerifyAudit(), org.admin).ok


@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_changing_any_column_of_a_record_is_named_by_verify(org: Org, victim: dict[str, Any], column: str) -> None:
    value = COLUMNS[column]
    if str(victim[column]) == value:  # the forgery must be a change
        value = {"outcome": "denied"}.get(column, value + "x")
    with org.platform.engine.begin() as conn:
        conn.execute(text(f"UPDATE audit_records SET {column} = :v WHERE seq = :s"), {"v": value, "s": victim["seq"]})
    result = org.bus.handle(c.VerifyAudit(), org.admin)
    assert not result.ok and result.first_bad_seq in (victim["seq"], victim["seq"] + 1), result


def test_deleting_a_middle_record_is_named_by_verify(org: Org, victim: dict[str, Any]) -> None:
    with org.platform.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq = :s"), {"s": victim["seq"]})
    result = org.bus.handle(c.VerifyAudit(), org.admin)
    assert not result.ok and result.first_bad_seq is not None


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/api/v1/audit/records"), ("PUT", "/api/v1/audit/records"),
                                              ("PATCH", "/api/v1/audit/records"), ("POST", "/api/v1/audit/records"),
                                              ("DELETE", "/api/v1/audit/records/1"), ("PUT", "/api/v1/audit/records/1"),
                                              ("POST", "/api/v1/audit/import"), ("DELETE", "/api/v1/audit")])
@pytest.mark.parametrize("who", ["admin", "arthur"])
def test_no_route_edits_the_audit_trail(api: TestClient, org: Org, attack: object, method: str, path: str,
                                        who: str) -> None:
    with attack():  # type: ignore[operator]
        refused(api.request(method, path, json={"seq": 1}, headers=auth(org.bearer(who))), 404, 405)
    assert org.bus.handle(c.VerifyAudit(), org.admin).ok
