"""`charter apply` through the SDK: idempotent, planned without effect, and all-or-nothing."""

from __future__ import annotations

import pytest

from charter.client.client import Client
from charter.errors import PermissionDenied, ValidationError

NEW_ACCOUNT = """
  - name: ml-sandbox
    kind: workload
    stage: dev
    ou: workloads
"""


def _with_new_account(acme_yaml: str, extra: str = NEW_ACCOUNT) -> str:
    """The acme file plus one more account (and anything else appended to the accounts list)."""
    return acme_yaml.replace("\nprincipals:\n", f"{extra}\nprincipals:\n", 1)


def _account_names(client: Client) -> list[str]:
    return sorted(a.name for a in client.accounts())


def _refusal(admin: Client, document: str, filename: str = "broken.yaml") -> ValidationError:
    before = _account_names(admin)
    with pytest.raises(ValidationError) as refused:
        admin.apply(document, filename=filename)
    assert _account_names(admin) == before, "a refused file must apply nothing"
    assert refused.value.details["file"] == filename
    assert filename in refused.value.message
    return refused.value


def _fields(error: ValidationError) -> list[str]:
    return [p["field"] for p in error.details["problems"]]


def test_applying_the_same_file_again_changes_nothing(admin: Client, acme_yaml: str) -> None:
    again = admin.apply(acme_yaml, filename="examples/acme/charter.yaml")

    assert again.applied is True
    assert again.changes == []


def test_apply_creates_the_declared_organization(admin: Client) -> None:
    org = admin.org()

    assert org.name == "acme"
    assert {a.name for a in org.accounts} == {"management", "ml-shared-services", "data-governance",
                                              "ml-dev", "ml-test", "ml-prod"}
    assert {u.name for u in org.units} == {"infrastructure", "workloads", "deployments", "security"}
    assert [p.id for p in admin.policies().policies if p.source == "organization"] == [
        "no-service-principals-in-prod"]


def test_plan_of_the_applied_file_shows_no_changes(admin: Client, acme_yaml: str) -> None:
    planned = admin.apply(acme_yaml, filename="examples/acme/charter.yaml", plan=True)

    assert planned.applied is False
    assert planned.changes == []


def test_plan_shows_the_changes_and_makes_none(admin: Client, acme_yaml: str) -> None:
    planned = admin.apply(_with_new_account(acme_yaml), plan=True)

    assert planned.applied is False
    assert [(c.kind, c.action, c.name) for c in planned.changes] == [("account", "create", "ml-sandbox")]
    assert "ml-sandbox" not in _account_names(admin)


def test_removing_a_binding_from_the_file_revokes_it_and_the_sessions_using_it(
        admin: Client, acme_yaml: str, personas: dict[str, Client], restore_org: None) -> None:
    session = personas["sam"].as_role("ml-dev", "data-scientist")
    assert session.role_bindings("ml-dev")
    without_sam = acme_yaml.replace("  - {principal: sam, account: ml-dev, role: data-scientist}\n", "")

    result = admin.apply(without_sam, filename="no-sam.yaml")

    assert [(c.kind, c.action, c.name) for c in result.changes] == [
        ("role-binding", "delete", "sam as data-scientist in ml-dev")]
    assert personas["sam"].whoami().bindings == {}
    with pytest.raises(PermissionDenied):
        session.role_bindings("ml-dev")
    session.close()


def test_apply_by_a_non_admin_is_denied(personas: dict[str, Client], acme_yaml: str) -> None:
    with pytest.raises(PermissionDenied) as denied:
        personas["priya"].apply(acme_yaml, plan=True)

    assert denied.value.details["policy"] == "default-deny"


# --- malformed files are refused whole, naming file and field --------------------------------------

def test_unknown_field_is_refused_naming_it(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml, NEW_ACCOUNT + "    colour: blue\n")

    error = _refusal(admin, document)

    assert _fields(error) == ["accounts[6].colour"]


def test_unknown_top_level_field_is_refused_naming_it(admin: Client, acme_yaml: str) -> None:
    error = _refusal(admin, _with_new_account(acme_yaml) + "\nbuckets: []\n")

    assert _fields(error) == ["buckets"]


def test_bad_stage_is_refused_naming_the_field(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml, NEW_ACCOUNT.replace("stage: dev", "stage: staging"))

    error = _refusal(admin, document)

    assert _fields(error) == ["accounts[6].stage"]


def test_workload_account_without_a_stage_is_refused(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml, NEW_ACCOUNT.replace("    stage: dev\n", ""))

    error = _refusal(admin, document)

    assert _fields(error) == ["accounts[ml-sandbox].stage"]


def test_unknown_organizational_unit_is_refused(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml, NEW_ACCOUNT.replace("ou: workloads", "ou: skunkworks"))

    error = _refusal(admin, document)

    assert _fields(error) == ["accounts[ml-sandbox].ou"]
    assert "skunkworks" in error.details["problems"][0]["reason"]


def test_binding_to_an_unknown_principal_is_refused(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml).replace(
        "\npolicies:\n", "  - {principal: ghost, account: ml-dev, role: data-scientist}\n\npolicies:\n", 1)

    error = _refusal(admin, document)

    assert _fields(error) == ["roleBindings[ghost/ml-dev/data-scientist].principal"]


def test_invalid_cedar_policy_is_refused_naming_it(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml) + (
        "  - id: broken-rule\n"
        "    cedar: |\n"
        "      forbid (principal, action, resource) when { this is not cedar };\n")

    error = _refusal(admin, document)

    assert _fields(error) == ["policies[broken-rule].cedar"]
    assert "Cedar" in error.details["problems"][0]["reason"]


def test_organization_name_mismatch_is_refused(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml).replace("organization: acme", "organization: globex", 1)

    error = _refusal(admin, document)

    assert _fields(error) == ["organization"]
    assert "globex" in error.details["problems"][0]["reason"]


def test_invalid_yaml_is_refused_naming_the_line(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml) + "  - {id: unclosed, cedar: [\n"

    error = _refusal(admin, document, filename="not-yaml.yaml")

    (field,) = _fields(error)
    assert field.startswith("line ")
    assert "not valid YAML" in error.details["problems"][0]["reason"]


def test_file_that_would_lock_out_the_org_admin_is_refused(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml).replace(
        "  - {principal: admin, account: management, role: org-admin}\n", "")

    error = _refusal(admin, document)

    assert _fields(error) == ["roleBindings"]


def test_every_problem_of_a_file_is_reported_at_once(admin: Client, acme_yaml: str) -> None:
    document = _with_new_account(acme_yaml, NEW_ACCOUNT.replace("ou: workloads", "ou: skunkworks")).replace(
        "organization: acme", "organization: globex", 1)

    error = _refusal(admin, document)

    assert sorted(_fields(error)) == ["accounts[ml-sandbox].ou", "organization"]
