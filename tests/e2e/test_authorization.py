"""Policy decisions seen from outside: every denial names its deciding policy and leaves an audit
record, and the organization's own Cedar rules take effect once applied."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from charter.client.client import Client
from charter.client.models import AuditRecordOut
from charter.errors import PermissionDenied

BIND_BOT_IN_PROD = "  - {principal: promotion-bot, account: ml-prod, role: ml-engineer}\n"


def _last_record(auditor: Client, actor: str, action: str) -> AuditRecordOut:
    records = list(auditor.audit_records(actor=actor, action=action))
    assert records, f"no audit record of {actor} doing {action}"
    return records[-1]


def _denied(call: Callable[[], object]) -> PermissionDenied:
    with pytest.raises(PermissionDenied) as denied:
        call()
    return denied.value


def test_denial_names_the_default_deny_and_is_audited(personas: dict[str, Client]) -> None:
    denied = _denied(lambda: personas["sam"].create_token("lena", expires_in_seconds=3600))

    record = _last_record(personas["arthur"], "sam", "iam:CreateToken")
    assert denied.details["policy"] == "default-deny"
    assert denied.details["action"] == "iam:CreateToken"
    assert (record.outcome, record.policy) == ("denied", "default-deny")
    assert record.details["error"] == "PermissionDenied"


def test_session_minting_a_token_is_denied_by_its_policy_and_audited(
        personas: dict[str, Client]) -> None:
    with personas["lena"].as_role("ml-dev", "lead-data-scientist") as session:
        denied = _denied(lambda: session.create_token("lena", expires_in_seconds=3600))
        session_id = session.whoami().via

    record = _last_record(personas["arthur"], "lena", "iam:CreateToken")
    assert denied.details["policy"] == "sessions-cannot-mint-tokens"
    assert (record.outcome, record.policy, record.via) == ("denied", "sessions-cannot-mint-tokens", session_id)


def test_role_chaining_is_denied_by_its_policy_and_audited(personas: dict[str, Client]) -> None:
    with personas["grace"].as_role("ml-prod", "governance-officer") as session:
        denied = _denied(lambda: session.assume_role("ml-shared-services", "governance-officer"))

    record = _last_record(personas["arthur"], "grace", "iam:AssumeRole")
    assert denied.details["policy"] == "no-role-chaining"
    assert (record.outcome, record.policy) == ("denied", "no-role-chaining")
    assert record.account == "ml-shared-services"


def test_service_principal_without_a_prod_binding_is_stopped_by_the_org_policy(
        personas: dict[str, Client]) -> None:
    # promotion-bot holds no binding in ml-prod; the organization's forbid matches all the same and
    # a forbid is what the denial names.
    denied = _denied(lambda: personas["promotion-bot"].assume_role("ml-prod", "ml-engineer"))

    record = _last_record(personas["arthur"], "promotion-bot", "iam:AssumeRole")
    assert denied.details["policy"] == "no-service-principals-in-prod"
    assert "holds no role binding" in denied.message
    assert (record.outcome, record.policy) == ("denied", "no-service-principals-in-prod")


def test_service_principal_bound_in_prod_still_cannot_assume_a_role_there(
        admin: Client, acme_yaml: str, personas: dict[str, Client], restore_org: None) -> None:
    admin.apply(acme_yaml.replace("\npolicies:\n", f"{BIND_BOT_IN_PROD}\npolicies:\n", 1),
                filename="bot-in-prod.yaml")
    assert personas["promotion-bot"].whoami().bindings["ml-prod"] == ["ml-engineer"]

    denied = _denied(lambda: personas["promotion-bot"].assume_role("ml-prod", "ml-engineer"))

    record = _last_record(personas["arthur"], "promotion-bot", "iam:AssumeRole")
    assert denied.details["policy"] == "no-service-principals-in-prod"
    assert "denied by no-service-principals-in-prod" in denied.message
    assert (record.outcome, record.policy, record.account) == ("denied", "no-service-principals-in-prod", "ml-prod")


def test_service_principal_assumes_its_role_outside_prod(personas: dict[str, Client]) -> None:
    issued = personas["promotion-bot"].assume_role("ml-shared-services", "ml-engineer")

    assert issued.session.account == "ml-shared-services"


def test_removing_the_org_policy_lifts_its_forbid(admin: Client, acme_yaml: str,
                                                  personas: dict[str, Client], restore_org: None) -> None:
    without_policy = acme_yaml[: acme_yaml.index("\npolicies:")] + "\n"
    without_policy = without_policy.replace("\nroleBindings:\n", "\nroleBindings:\n" + BIND_BOT_IN_PROD, 1)

    admin.apply(without_policy, filename="no-org-policy.yaml")

    assert personas["promotion-bot"].assume_role("ml-prod", "ml-engineer").session.account == "ml-prod"


def test_persona_cannot_read_an_account_where_it_holds_no_role(personas: dict[str, Client]) -> None:
    denied = _denied(lambda: personas["diego"].role_bindings("ml-dev"))

    assert denied.details["policy"] == "default-deny"
    assert _last_record(personas["arthur"], "diego", "iam:ListRoleBindings").outcome == "denied"


def test_persona_reads_the_role_bindings_of_its_account(personas: dict[str, Client]) -> None:
    bindings = personas["diego"].role_bindings("data-governance")

    assert [(b.principal, b.role) for b in bindings] == [("diego", "data-engineer")]


def test_org_admin_reads_role_bindings_of_every_account(admin: Client) -> None:
    bindings = admin.role_bindings("ml-dev")

    assert ("lena", "lead-data-scientist") in {(b.principal, b.role) for b in bindings}


def test_data_scientist_cannot_apply_the_organization(personas: dict[str, Client], acme_yaml: str) -> None:
    denied = _denied(lambda: personas["sam"].apply(acme_yaml))

    assert denied.details["policy"] == "default-deny"
    assert _last_record(personas["arthur"], "sam", "org:Apply").outcome == "denied"


def test_service_principal_cannot_administer_even_with_a_management_role(
        admin: Client, acme_yaml: str, personas: dict[str, Client], restore_org: None) -> None:
    bot_admin = "  - {principal: promotion-bot, account: management, role: org-admin}\n"
    admin.apply(acme_yaml.replace("\npolicies:\n", f"{bot_admin}\npolicies:\n", 1), filename="bot-admin.yaml")

    denied = _denied(lambda: personas["promotion-bot"].create_token("sam", expires_in_seconds=3600))

    assert denied.details["policy"] == "service-principals-cannot-administer"
