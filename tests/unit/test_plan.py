from __future__ import annotations

from charter.domain.org import (
    Account,
    AccountKind,
    OrgState,
    OrgUnit,
    Principal,
    RoleBinding,
    Stage,
)
from charter.domain.plan import ChangeAction, diff, merge, validate

ADMIN = RoleBinding("admin", "management", "org-admin")


def _state(**kw: object) -> OrgState:
    base = OrgState(
        accounts={"management": Account("management", AccountKind.MANAGEMENT)},
        principals={"admin": Principal("admin")},
        bindings={ADMIN},
    )
    for k, v in kw.items():
        setattr(base, k, v)
    return base


def test_an_unchanged_organization_plans_no_changes() -> None:
    current = merge(OrgState(), _state())
    assert diff(current, merge(current, _state())) == []


def test_new_account_and_binding_are_planned_as_creates() -> None:
    current = merge(OrgState(), _state())
    desired = _state(
        units={"workloads": OrgUnit("workloads")},
        accounts={"management": Account("management", AccountKind.MANAGEMENT),
                  "ml-dev": Account("ml-dev", AccountKind.WORKLOAD, Stage.DEV, "workloads")},
        principals={"admin": Principal("admin"), "lena": Principal("lena")},
        bindings={ADMIN, RoleBinding("lena", "ml-dev", "lead-data-scientist")},
    )
    result = merge(current, desired)
    assert validate(current, result) == []
    planned = {(ch.kind, ch.action, ch.name) for ch in diff(current, result)}
    assert ("account", ChangeAction.CREATE, "ml-dev") in planned
    assert ("org-unit", ChangeAction.CREATE, "workloads") in planned
    assert ("role-binding", ChangeAction.CREATE, "lena as lead-data-scientist in ml-dev") in planned


def test_a_binding_left_out_of_the_file_is_revoked() -> None:
    current = merge(OrgState(), _state(principals={"admin": Principal("admin"), "lena": Principal("lena")},
                                       bindings={ADMIN, RoleBinding("lena", "management", "auditor")}))
    result = merge(current, _state(principals={"admin": Principal("admin"), "lena": Principal("lena")}))
    changes = diff(current, result)
    assert [(c.kind, c.action) for c in changes] == [("role-binding", ChangeAction.DELETE)]


def test_accounts_left_out_of_the_file_are_kept() -> None:
    current = merge(OrgState(), _state(accounts={
        "management": Account("management", AccountKind.MANAGEMENT),
        "ml-dev": Account("ml-dev", AccountKind.WORKLOAD, Stage.DEV)}))
    result = merge(current, _state())
    assert "ml-dev" in result.accounts
    assert diff(current, result) == []


def test_workload_without_stage_is_a_problem_naming_the_field() -> None:
    result = merge(OrgState(), _state(accounts={
        "management": Account("management", AccountKind.MANAGEMENT),
        "ml-dev": Account("ml-dev", AccountKind.WORKLOAD)}))
    assert [p.field for p in validate(OrgState(), result)] == ["accounts[ml-dev].stage"]


def test_an_accounts_kind_cannot_change() -> None:
    current = merge(OrgState(), _state(accounts={
        "management": Account("management", AccountKind.MANAGEMENT),
        "ml-dev": Account("ml-dev", AccountKind.WORKLOAD, Stage.DEV)}))
    result = merge(current, _state(accounts={
        "management": Account("management", AccountKind.MANAGEMENT),
        "ml-dev": Account("ml-dev", AccountKind.SHARED_SERVICES)}))
    assert any(p.field == "accounts[ml-dev].kind" for p in validate(current, result))


def test_removing_the_last_org_admin_is_refused() -> None:
    result = merge(OrgState(), _state(bindings=set()))
    assert any("lock itself out" in p.reason for p in validate(OrgState(), result))


def test_cyclic_org_units_are_refused() -> None:
    result = merge(OrgState(), _state(units={"a": OrgUnit("a", "b"), "b": OrgUnit("b", "a")}))
    assert any("cycle" in p.reason for p in validate(OrgState(), result))


def test_bindings_to_unknown_principal_account_or_role_are_each_named() -> None:
    result = merge(OrgState(), _state(bindings={ADMIN, RoleBinding("ghost", "nowhere", "wizard")}))
    fields = {p.field for p in validate(OrgState(), result)}
    assert fields == {"roleBindings[ghost/nowhere/wizard].principal",
                      "roleBindings[ghost/nowhere/wizard].account",
                      "roleBindings[ghost/nowhere/wizard].role"}


def test_what_something_else_manages_is_kept_when_the_file_leaves_it_out() -> None:
    from charter.domain.org import BusPolicy, EventRule, EventTarget, TargetKind

    made = "project:ml-dev/churn"
    rule = EventRule("management", "churn-approved", '{"source":["management"]}',
                     (EventTarget(TargetKind.HANDLER, "audit-log"),), managed_by=made)
    binding = RoleBinding("lena", "management", "auditor", managed_by=made)
    current = merge(OrgState(), _state(principals={"admin": Principal("admin"), "lena": Principal("lena")}))
    current.rules[rule.key] = rule
    current.bindings.add(binding)
    current.bus_policies["management"] = BusPolicy("management", (), managed_by=made)
    desired = _state(principals={"admin": Principal("admin"), "lena": Principal("lena")})
    result = merge(current, desired)
    assert diff(current, result) == []
    assert result.rules[rule.key] == rule and binding in result.bindings


def test_a_file_declaring_a_managed_rule_is_refused_naming_its_manager() -> None:
    from charter.domain.org import EventRule, EventTarget, TargetKind
    from charter.domain.plan import managed_conflicts

    target = (EventTarget(TargetKind.HANDLER, "audit-log"),)
    current = merge(OrgState(), _state())
    current.rules["management/r"] = EventRule("management", "r", "{}", target, managed_by="project:x/y")
    desired = _state(rules={"management/r": EventRule("management", "r", "{}", target)})
    problems = managed_conflicts(current, desired)
    assert [(p.field, p.reason) for p in problems] == [
        ("rules[management/r]", "is managed by project:x/y; change it there")]
