"""Account vending on fakes: blueprints in charter.yaml checked by path, requests decided by the org
admin, an approval that creates the account with its blueprint's managed baseline, and apply
leaving that baseline alone."""

from __future__ import annotations

import pytest

from charter.domain import commands as c
from charter.domain.account_requests import AccountRequest, RequestStatus
from charter.domain.catalog import Share
from charter.domain.org import RoleBinding
from charter.errors import Conflict, InvalidTransition, PermissionDenied, ValidationError
from tests.unit.conftest import World

SHARED = "ml-shared-services"


def _fields(error: ValidationError) -> list[str]:
    return [p["field"] for p in error.details["problems"]]


def _refused(world: World, text: str) -> ValidationError:
    with pytest.raises(ValidationError) as refused:
        world.bus.handle(c.ApplyOrg(text), world.admin)
    return refused.value


def _request(world: World, who: str = "lena", name: str = "ml-dev-2", **overrides: str) -> AccountRequest:
    fields = {"ou": "workloads", "kind": "workload", "stage": "dev", "blueprint": "dev-account",
              "reason": "a second team's experiments", **overrides}
    request: AccountRequest = world.bus.handle(c.RequestAccount(name, fields["ou"], fields["kind"], fields["stage"],
                                                                fields["blueprint"], fields["reason"]),
                                               world.token_for(who))
    return request


def _approve(world: World, request: AccountRequest, comment: str = "ok") -> AccountRequest:
    decided: AccountRequest = world.bus.handle(c.DecideAccountRequest(request.id, True, comment), world.admin)
    return decided


# --- blueprints in charter.yaml ------------------------------------------------------------------

def test_a_blueprint_rule_sending_to_an_unknown_bus_is_refused_by_its_path(world: World, example_text: str) -> None:
    text = example_text.replace("          - bus: ml-shared-services\n    imports:",
                                "          - bus: ml-nowhere\n    imports:")
    assert "blueprints[dev-account].rules[0].targets[0].bus" in _fields(_refused(world, text))


def test_a_blueprint_binding_an_unknown_role_or_principal_is_refused_by_its_path(world: World,
                                                                                  example_text: str) -> None:
    text = example_text.replace("{principal: priya, role: platform-engineer}",
                                "{principal: nobody-here, role: chief-wizard}")
    fields = _fields(_refused(world, text))
    assert "blueprints[dev-account].bindings[1].principal" in fields
    assert "blueprints[dev-account].bindings[1].role" in fields


def test_a_workload_blueprint_names_its_stage(world: World, example_text: str) -> None:
    text = example_text.replace("    kind: workload\n    stage: dev\n    bindings:", "    kind: workload\n    bindings:")
    assert "blueprints[dev-account].stage" in _fields(_refused(world, text))


def test_a_blueprint_importing_a_portfolio_nobody_declared_is_refused(world: World, example_text: str) -> None:
    text = example_text.replace("portfolio: ml-projects}", "portfolio: ml-nothing}")
    assert "blueprints[dev-account].imports[0]" in _fields(_refused(world, text))


def test_a_placeholder_other_than_account_or_requester_is_refused(world: World, example_text: str) -> None:
    text = example_text.replace('{principal: "{{requester}}", role: lead-data-scientist}',
                                '{principal: "{{manager}}", role: lead-data-scientist}')
    assert "blueprints[dev-account].bindings[0].principal" in _fields(_refused(world, text))


def test_the_example_declares_the_dev_account_blueprint(world: World) -> None:
    blueprint = world.store.data.state.blueprints["dev-account"]
    assert (blueprint.kind, blueprint.stage) == ("workload", "dev")
    assert [(b.principal, b.role) for b in blueprint.bindings] == [
        ("{{requester}}", "lead-data-scientist"), ("priya", "platform-engineer")]
    assert [i.key for i in blueprint.imports] == [f"{SHARED}/ml-projects"]


def test_a_blueprint_left_out_of_the_file_is_removed(world: World, example_text: str) -> None:
    start, end = example_text.index("# Account vending"), example_text.index("# Event buses")
    result = world.bus.handle(c.ApplyOrg(example_text[:start] + example_text[end:]), world.admin)
    assert [(ch.kind, str(ch.action), ch.name) for ch in result.changes] == [("blueprint", "delete", "dev-account")]
    assert world.store.data.state.blueprints == {}


# --- requests and their decisions ----------------------------------------------------------------

def test_approval_creates_the_account_with_its_managed_baseline(world: World) -> None:
    request = _request(world)
    assert request.status is RequestStatus.PENDING
    decided = _approve(world, request)
    state = world.store.data.state
    assert decided.status is RequestStatus.APPROVED and decided.decided_by == "admin"
    account = state.accounts["ml-dev-2"]
    assert (account.kind, account.stage, account.ou) == ("workload", "dev", "workloads")
    made = {(b.principal, b.role, b.managed_by) for b in state.bindings if b.account == "ml-dev-2"}
    assert made == {("lena", "lead-data-scientist", "blueprint:dev-account"),
                    ("priya", "platform-engineer", "blueprint:dev-account")}
    rule = state.rules["ml-dev-2/forward-approved-packages"]
    assert rule.managed_by == "blueprint:dev-account" and rule.targets[0].value == SHARED
    assert Share(SHARED, "ml-projects", "ml-dev-2") in world.store.data.shares
    types = [e.type for e in world.store.data.outbox]
    assert "charter.org.account.created" in types
    assert types.count("charter.org.account-request.state-changed") == 2
    assert world.store.data.records[-1].action == "org:ApproveAccountRequest"


def test_apply_afterwards_leaves_the_vended_baseline_alone(world: World, example_text: str) -> None:
    _approve(world, _request(world))
    result = world.bus.handle(c.ApplyOrg(example_text), world.admin)
    assert result.changes == []
    state = world.store.data.state
    assert RoleBinding("lena", "ml-dev-2", "lead-data-scientist") in state.bindings
    assert "ml-dev-2/forward-approved-packages" in state.rules
    assert Share(SHARED, "ml-projects", "ml-dev-2") in world.store.data.shares


def test_the_vended_account_imports_the_blueprints_portfolio(world: World) -> None:
    _approve(world, _request(world))
    view = world.bus.handle(c.ListImportedPortfolios("ml-dev-2"), world.token_for("lena"))
    assert "ml-projects" in [e.imported.portfolio.name for e in view.portfolios]  # type: ignore[attr-defined]


def test_a_second_approval_is_an_invalid_transition(world: World) -> None:
    request = _request(world)
    _approve(world, request)
    with pytest.raises(InvalidTransition):
        _approve(world, request)


def test_a_rejection_says_why_and_creates_nothing(world: World) -> None:
    request = _request(world)
    with pytest.raises(ValidationError, match="comment"):
        world.bus.handle(c.DecideAccountRequest(request.id, False, ""), world.admin)
    rejected: AccountRequest = world.bus.handle(c.DecideAccountRequest(request.id, False, "use ml-dev"), world.admin)
    assert rejected.status is RequestStatus.REJECTED and rejected.comment == "use ml-dev"
    assert "ml-dev-2" not in world.store.data.state.accounts
    with pytest.raises(InvalidTransition):
        _approve(world, request)


def test_nobody_approves_their_own_request(world: World, example_text: str) -> None:
    world.bus.handle(c.ApplyOrg(example_text.replace(
        "  - {principal: lena, account: ml-dev, role: lead-data-scientist}\n",
        "  - {principal: lena, account: ml-dev, role: lead-data-scientist}\n"
        "  - {principal: admin, account: ml-dev, role: lead-data-scientist}\n")), world.admin)
    request = _request(world, "admin")
    with pytest.raises(PermissionDenied):
        _approve(world, request)
    assert "ml-dev-2" not in world.store.data.state.accounts


@pytest.mark.parametrize("who", ["sam", "diego", "arthur", "priya"])
def test_only_lead_data_scientists_and_ml_engineers_request_accounts(world: World, who: str) -> None:
    with pytest.raises(PermissionDenied):
        _request(world, who)


def test_an_ml_engineer_requests_an_account(world: World) -> None:
    assert _request(world, "mei").requested_by == "mei"


def test_a_lead_data_scientist_cannot_approve(world: World) -> None:
    request = _request(world)
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.DecideAccountRequest(request.id, True, ""), world.token_for("mei"))


def test_a_request_for_an_existing_account_is_a_conflict(world: World) -> None:
    with pytest.raises(Conflict, match="already exists"):
        _request(world, name="ml-dev")


@pytest.mark.parametrize(("overrides", "field"), [
    ({"ou": "nowhere"}, "ou"),
    ({"blueprint": "prod-account"}, "blueprint"),
    ({"stage": "test"}, "blueprint"),
    ({"stage": "staging"}, "stage"),
    ({"reason": "  "}, "reason"),
])
def test_a_request_that_cannot_be_vended_is_refused_naming_the_field(world: World, overrides: dict[str, str],
                                                                     field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        _request(world, **overrides)
    assert refused.value.details["field"] == field
    assert world.store.data.account_requests == {}


def test_an_account_created_meanwhile_fails_the_approval_and_changes_nothing(world: World,
                                                                           example_text: str) -> None:
    request = _request(world)
    world.bus.handle(c.ApplyOrg(example_text.replace(
        "\nprincipals:\n", "\n  - name: ml-dev-2\n    kind: workload\n    stage: dev\n    ou: workloads\n"
                           "\nprincipals:\n", 1)), world.admin)
    with pytest.raises(Conflict):
        _approve(world, request)
    assert world.store.data.account_requests[request.id].status is RequestStatus.PENDING
    assert not any(b.account == "ml-dev-2" for b in world.store.data.state.bindings)


def test_a_second_pending_request_for_the_same_name_is_a_conflict(world: World) -> None:
    _request(world)
    with pytest.raises(Conflict, match="pending"):
        _request(world, "mei")


def test_the_requests_list_by_status(world: World) -> None:
    first = _request(world)
    _request(world, "mei", name="ml-dev-3")
    _approve(world, first)
    page = world.bus.handle(c.ListAccountRequests("Pending"), world.token_for("lena"))
    assert [r.account for r in page.items] == ["ml-dev-3"]  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        world.bus.handle(c.ListAccountRequests("Maybe"), world.admin)


def test_an_ou_the_shared_services_bus_does_not_admit_fails_the_approval_naming_the_rule(world: World) -> None:
    request = _request(world, ou="deployments")
    with pytest.raises(ValidationError) as refused:
        _approve(world, request)
    assert refused.value.details["problems"][0]["field"] == "rules[ml-dev-2/forward-approved-packages].targets"
    assert "does not admit" in refused.value.message
    assert "ml-dev-2" not in world.store.data.state.accounts
    assert world.store.data.account_requests[request.id].status is RequestStatus.PENDING


def test_a_blueprint_bus_policy_is_made_for_the_new_account_and_managed(world: World, example_text: str) -> None:
    world.bus.handle(c.ApplyOrg(example_text.replace(
        "    imports:\n      - {account: ml-shared-services, portfolio: ml-projects}\n",
        "    imports:\n      - {account: ml-shared-services, portfolio: ml-projects}\n"
        "    eventBus:\n      allow: [ml-shared-services]\n")), world.admin)
    _approve(world, _request(world))
    policy = world.store.data.state.bus_policies["ml-dev-2"]
    assert (policy.allow, policy.managed_by) == ((SHARED,), "blueprint:dev-account")
