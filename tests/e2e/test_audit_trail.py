"""Reading the audit trail through the SDK: who may, the filters, export, verification."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from charter.client.client import Client
from charter.errors import PermissionDenied, Unauthenticated

from .support import ServerProcess


def test_auditor_lists_the_audit_trail(personas: dict[str, Client]) -> None:
    records = list(personas["arthur"].audit_records())

    assert records[0].seq == 1
    assert records[0].action == "org:Init"
    assert [r.seq for r in records] == list(range(1, len(records) + 1))


def test_auditor_verifies_the_audit_trail(personas: dict[str, Client]) -> None:
    result = personas["arthur"].audit_verify()

    assert result.ok is True
    assert result.first_bad_seq is None
    assert result.records >= 10
    assert result.checkpoints >= 2  # one every 5 records in this tier


def test_governance_officer_reads_the_audit_trail(personas: dict[str, Client]) -> None:
    assert list(personas["grace"].audit_records(action="org:Init"))


def test_data_scientist_cannot_list_the_audit_trail(personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied) as denied:
        list(personas["sam"].audit_records())

    assert denied.value.details["policy"] == "default-deny"


def test_data_scientist_cannot_verify_the_audit_trail(personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied):
        personas["sam"].audit_verify()


def test_data_scientist_cannot_export_the_audit_trail(personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied):
        list(personas["sam"].audit_export())


def test_audit_filter_by_actor_returns_only_that_actor(personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied):
        personas["diego"].audit_verify()

    records = list(personas["arthur"].audit_records(actor="diego"))

    assert records
    assert {r.actor for r in records} == {"diego"}


def test_audit_filter_by_action_returns_only_that_action(admin: Client, personas: dict[str, Client]) -> None:
    admin.create_token("mei", expires_in_seconds=3600)

    records = list(personas["arthur"].audit_records(action="iam:CreateToken"))

    assert records
    assert {r.action for r in records} == {"iam:CreateToken"}


def test_audit_filter_by_resource_returns_the_records_about_it(admin: Client, personas: dict[str, Client]) -> None:
    issued = admin.create_token("mei", expires_in_seconds=3600)
    admin.revoke_token(issued.token.id)

    records = list(personas["arthur"].audit_records(resource=issued.token.crn))

    assert [(r.action, r.outcome) for r in records] == [("iam:CreateToken", "allowed"),
                                                        ("iam:RevokeToken", "allowed")]


def test_audit_filter_by_the_management_account(personas: dict[str, Client]) -> None:
    records = list(personas["arthur"].audit_records(account="management"))

    assert records
    assert {r.account for r in records} == {"management"}


def test_auditor_filters_the_audit_trail_by_a_workload_account(personas: dict[str, Client]) -> None:
    personas["lena"].assume_role("ml-dev", "lead-data-scientist")

    records = list(personas["arthur"].audit_records(account="ml-dev"))

    assert records
    assert {r.account for r in records} == {"ml-dev"}


def test_audit_filter_by_time_window(admin: Client, personas: dict[str, Client]) -> None:
    first = admin.create_token("mei", expires_in_seconds=3600)
    second = admin.create_token("mei", expires_in_seconds=3600)
    third = admin.create_token("mei", expires_in_seconds=3600)
    auditor = personas["arthur"]
    times = {r.resource: r.time for r in auditor.audit_records(actor="admin", action="iam:CreateToken")}

    window = list(auditor.audit_records(actor="admin", action="iam:CreateToken",
                                        since=times[second.token.crn], until=times[third.token.crn]))

    assert [r.resource for r in window] == [second.token.crn]
    assert first.token.crn not in {r.resource for r in window}


def test_audit_time_filter_without_a_zone_is_not_a_server_error(server: ServerProcess, admin_token: str) -> None:
    response = httpx.get(f"{server.url}/api/v1/audit/records", params={"since": "2020-01-01T00:00:00"},
                         headers={"authorization": f"Bearer {admin_token}"})

    assert response.status_code in (200, 400)


def test_audit_export_gives_json_lines_matching_the_list(personas: dict[str, Client]) -> None:
    auditor = personas["arthur"]

    lines = list(auditor.audit_export(actor="admin", action="iam:CreateToken"))
    listed = list(auditor.audit_records(actor="admin", action="iam:CreateToken"))

    exported = [json.loads(line) for line in lines]
    assert all(line.endswith(b"\n") for line in lines)
    assert [e["seq"] for e in exported] == [r.seq for r in listed]
    assert [e["hash"] for e in exported] == [r.hash for r in listed]
    assert set(exported[0]) >= {"seq", "id", "time", "actor", "via", "account", "action", "resource",
                                "outcome", "policy", "request_id", "details", "prev_hash", "hash"}


def test_audit_export_is_served_as_ndjson(server: ServerProcess, persona_tokens: dict[str, str]) -> None:
    response = httpx.get(f"{server.url}/api/v1/audit/export", params={"action": "org:Init"},
                         headers={"authorization": f"Bearer {persona_tokens['arthur']}"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    (line,) = response.text.splitlines()
    assert json.loads(line)["action"] == "org:Init"


def test_refused_credential_is_audited(personas: dict[str, Client], client_for: Callable[[str], Client]) -> None:
    with pytest.raises(Unauthenticated):
        client_for("cht_e2edeadbeef00000_nottherightsecret").whoami()

    records = list(personas["arthur"].audit_records(action="iam:Authenticate",
                                                    resource="crn:charter:management:iam:credential/e2edeadbeef00000"))

    assert records
    assert (records[-1].actor, records[-1].outcome) == (None, "denied")


def test_denial_record_carries_the_request_id_of_the_response(
        server: ServerProcess, persona_tokens: dict[str, str], personas: dict[str, Client]) -> None:
    response = httpx.get(f"{server.url}/api/v1/accounts/ml-prod/role-bindings",
                         headers={"authorization": f"Bearer {persona_tokens['sam']}"})

    assert response.status_code == 403
    record = list(personas["arthur"].audit_records(actor="sam", action="iam:ListRoleBindings"))[-1]
    assert record.request_id == response.headers["x-request-id"]


def test_audit_listing_pages_through_with_a_cursor(server: ServerProcess, persona_tokens: dict[str, str]) -> None:
    headers = {"authorization": f"Bearer {persona_tokens['arthur']}"}
    first = httpx.get(f"{server.url}/api/v1/audit/records", params={"limit": 3}, headers=headers).json()
    second = httpx.get(f"{server.url}/api/v1/audit/records",
                       params={"limit": 3, "cursor": first["next_cursor"]}, headers=headers).json()

    assert [r["seq"] for r in first["items"]] == [1, 2, 3]
    assert [r["seq"] for r in second["items"]] == [4, 5, 6]


def test_audit_listing_with_an_invalid_cursor_is_a_validation_error(
        server: ServerProcess, persona_tokens: dict[str, str]) -> None:
    response = httpx.get(f"{server.url}/api/v1/audit/records", params={"cursor": "%%%not-a-cursor"},
                         headers={"authorization": f"Bearer {persona_tokens['arthur']}"})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "ValidationError"


def test_audit_cursor_with_a_non_numeric_position_is_a_validation_error(
        server: ServerProcess, persona_tokens: dict[str, str]) -> None:
    cursor = "eyJhZnRlciI6ICJ4In0"  # base64 of {"after": "x"}, the shape of another listing's cursor

    response = httpx.get(f"{server.url}/api/v1/audit/records", params={"cursor": cursor},
                         headers={"authorization": f"Bearer {persona_tokens['arthur']}"})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "ValidationError"


def test_org_admin_verifies_the_audit_trail(admin: Client) -> None:
    assert admin.audit_verify().ok is True


def test_audit_listing_refuses_a_page_larger_than_the_maximum(
        server: ServerProcess, persona_tokens: dict[str, str]) -> None:
    response = httpx.get(f"{server.url}/api/v1/audit/records", params={"limit": 100000},
                         headers={"authorization": f"Bearer {persona_tokens['arthur']}"})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "ValidationError"
    assert response.json()["error"]["details"]["field"] == "limit"
