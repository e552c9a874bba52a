"""What ``charter apply`` would change: validate a desired organization and diff it against the current one.

Org units, accounts and principals are created or updated, never deleted by a file (removing an
account is a lifecycle of its own); custom roles, role bindings and policies are kept exactly as the
file declares them, so removing a binding from the file revokes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from charter.domain.names import NAME_PATTERN
from charter.domain.org import (
    BUILTIN_ROLES,
    MANAGEMENT_ACCOUNT,
    Account,
    AccountKind,
    EventRule,
    EventTarget,
    OrgState,
    PrincipalKind,
    Role,
    RoleBinding,
    RoleDefinition,
    TargetKind,
)

# The handlers a rule may target by name: the source of the names. ``services/event_handlers.py``
# implements each (a test fails when the two disagree); a name that nothing implements would accept
# events and drop them.
BUILTIN_HANDLERS: frozenset[str] = frozenset({"audit-log", "promote-model-package"})


class ChangeAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    action: ChangeAction
    name: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    def describe(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.action]
        if self.action is ChangeAction.UPDATE and self.before and self.after:
            diffs = ", ".join(
                f"{k}: {self.before.get(k)!r} -> {self.after.get(k)!r}"
                for k in self.after
                if self.before.get(k) != self.after.get(k)
            )
            return f"{sign} {self.kind} {self.name} ({diffs})"
        return f"{sign} {self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a desired organization is refused: where in the file, and why."""

    field: str
    reason: str


def builtin_roles() -> dict[str, RoleDefinition]:
    return {name: RoleDefinition(name, text, builtin=True) for name, text in BUILTIN_ROLES.items()}


def merge(current: OrgState, desired: OrgState) -> OrgState:
    """The organization as it will be once ``desired`` is applied on top of ``current``.

    What something else manages (a project's rules, a vended account's baseline: ``managed_by``
    set) is kept as it is: the file neither changes nor removes it (see ``managed_conflicts``)."""
    return OrgState(
        units={**current.units, **desired.units},
        accounts={**current.accounts, **desired.accounts},
        principals={**current.principals, **desired.principals},
        roles={**builtin_roles(), **{k: replace(v, builtin=False) for k, v in desired.roles.items()}},
        bindings={b for b in current.bindings if b.managed_by} | set(desired.bindings),
        policies=dict(desired.policies),
        bus_policies={**desired.bus_policies,
                      **{k: p for k, p in current.bus_policies.items() if p.managed_by}},
        rules={**desired.rules, **{k: r for k, r in current.rules.items() if r.managed_by}},
        blueprints=dict(desired.blueprints),
    )


def managed_conflicts(current: OrgState, desired: OrgState) -> list[Problem]:
    """A file that declares what something else manages is refused, naming the manager: the
    resource changes where it was made (its project, its account's blueprint)."""
    problems = [Problem(f"rules[{key}]", f"is managed by {rule.managed_by}; change it there")
                for key, rule in sorted(current.rules.items())
                if rule.managed_by and key in desired.rules]
    problems += [Problem(f"eventBuses[{name}]", f"is managed by {policy.managed_by}; change it there")
                 for name, policy in sorted(current.bus_policies.items())
                 if policy.managed_by and name in desired.bus_policies]
    return problems


def validate(current: OrgState, result: OrgState) -> list[Problem]:
    problems: list[Problem] = []
    for ou in result.units.values():
        if ou.parent is not None and ou.parent not in result.units:
            problems.append(Problem(f"orgUnits[{ou.name}].parent", f"unknown organizational unit {ou.parent!r}"))
        elif ou.name in result.ou_ancestors(ou.parent):
            problems.append(Problem(f"orgUnits[{ou.name}].parent", "organizational units form a cycle"))
    for account in result.accounts.values():
        problems.extend(_account_problems(account, current.accounts.get(account.name), result))
    for name in result.roles:
        if name in BUILTIN_ROLES and not result.roles[name].builtin:
            problems.append(Problem(f"roles[{name}]", "is a built-in role and cannot be redeclared"))
    for b in sorted(result.bindings):
        where = f"roleBindings[{b.principal}/{b.account}/{b.role}]"
        if b.principal not in result.principals:
            problems.append(Problem(f"{where}.principal", f"unknown principal {b.principal!r}"))
        if b.account not in result.accounts:
            problems.append(Problem(f"{where}.account", f"unknown account {b.account!r}"))
        if b.role not in result.roles:
            problems.append(Problem(f"{where}.role", f"unknown role {b.role!r}"))
    problems.extend(_event_problems(result))
    problems.extend(_blueprint_problems(result))
    if not any(b.role == Role.ORG_ADMIN and b.account == MANAGEMENT_ACCOUNT for b in result.bindings):
        problems.append(
            Problem("roleBindings", f"no principal would hold {Role.ORG_ADMIN} in the "
                    f"{MANAGEMENT_ACCOUNT} account; the organization would lock itself out")
        )
    return problems


def _event_problems(result: OrgState) -> list[Problem]:
    problems: list[Problem] = []
    for policy in result.bus_policies.values():
        where = f"eventBuses[{policy.account}]"
        if policy.account not in result.accounts:
            problems.append(Problem(f"{where}.account", f"unknown account {policy.account!r}"))
        for allowed in policy.allow:
            known = result.units if allowed.startswith("ou:") else result.accounts
            if allowed.removeprefix("ou:") not in known:
                problems.append(Problem(f"{where}.allow", f"unknown account or unit {allowed!r}"))
    for rule in result.rules.values():
        where = f"rules[{rule.key}]"
        if rule.account not in result.accounts:
            problems.append(Problem(f"{where}.account", f"unknown account {rule.account!r}"))
        for i, target in enumerate(rule.targets):
            problems.extend(_target_problems(result, rule, target, f"{where}.targets"))
            problems.extend(_run_as_problems(result, rule, target, f"{where}.targets[{i}].runAs"))
    return problems


def _blueprint_problems(result: OrgState) -> list[Problem]:
    """What a blueprint names must exist; the new account's own name fills ``{{account}}``."""
    problems: list[Problem] = []
    for bp in result.blueprints.values():
        where = f"blueprints[{bp.name}]"
        for i, b in enumerate(bp.bindings):
            if "{{" not in b.principal and b.principal not in result.principals:
                problems.append(Problem(f"{where}.bindings[{i}].principal", f"unknown principal {b.principal!r}"))
            if b.role not in result.roles:
                problems.append(Problem(f"{where}.bindings[{i}].role", f"unknown role {b.role!r}"))
        for allowed in bp.bus_allow or ():
            known = result.units if allowed.startswith("ou:") else result.accounts
            if allowed.removeprefix("ou:") not in known:
                problems.append(Problem(f"{where}.eventBus.allow", f"unknown account or unit {allowed!r}"))
        for i, rule in enumerate(bp.rules):
            for j, target in enumerate(rule.targets):
                tw = f"{where}.rules[{i}].targets[{j}]"
                if target.kind is TargetKind.BUS:
                    if "{{account}}" in target.value.replace(" ", "") or target.value == rule.account:
                        problems.append(Problem(f"{tw}.bus", "a rule cannot send events back to its own bus"))
                    elif "{{" not in target.value and target.value not in result.accounts:
                        problems.append(Problem(f"{tw}.bus", f"unknown target account {target.value!r}"))
                elif target.kind is TargetKind.HANDLER and target.value not in BUILTIN_HANDLERS:
                    problems.append(Problem(f"{tw}.handler", f"unknown handler {target.value!r} (built-in "
                                                             f"handlers: {', '.join(sorted(BUILTIN_HANDLERS))})"))
                elif target.kind is TargetKind.WEBHOOK and not target.value.startswith(("https://", "http://")):
                    problems.append(Problem(f"{tw}.webhook", f"a webhook target is an http(s) URL, not {target.value!r}"))
                elif target.kind is TargetKind.PIPELINE and "{{" not in target.value:
                    problems += _pipeline_target_problems(target, tw)
                runner = result.principals.get(target.run_as or "")
                if target.run_as is not None and (runner is None or runner.kind is not PrincipalKind.SERVICE):
                    problems.append(Problem(f"{tw}.runAs", f"{target.run_as!r} is not a service principal"))
    return problems


def _run_as_problems(result: OrgState, rule: EventRule, target: EventTarget, where: str) -> list[Problem]:
    name = target.run_as
    if name is None:
        return []
    if target.kind not in (TargetKind.HANDLER, TargetKind.PIPELINE):
        return [Problem(where, f"only a handler or pipeline target acts as a principal, not a {target.kind} target")]
    principal = result.principals.get(name)
    if principal is None:
        return [Problem(where, f"unknown principal {name!r}")]
    if principal.kind is not PrincipalKind.SERVICE:
        return [Problem(where, f"{name} is a {principal.kind}; a handler acts only as a service principal")]
    if not any(b.principal == name and b.account == rule.account for b in result.bindings):
        return [Problem(where, f"{name} holds no role in {rule.account}; bind it a role there")]
    return []


def _target_problems(result: OrgState, rule: EventRule, target: EventTarget, where: str) -> list[Problem]:
    if target.kind is TargetKind.BUS:
        if target.value not in result.accounts:
            return [Problem(where, f"unknown target account {target.value!r}")]
        if target.value == rule.account:
            return [Problem(where, "a rule cannot send events back to its own bus")]
        policy = result.bus_policies.get(target.value)
        if policy is None or not policy.admits(result, rule.account):
            return [Problem(where, f"the bus of {target.value} does not admit events from {rule.account}; "
                                   f"allow it under eventBuses")]
    if target.kind is TargetKind.HANDLER and target.value not in BUILTIN_HANDLERS:
        known = ", ".join(sorted(BUILTIN_HANDLERS)) or "none yet"
        return [Problem(where, f"unknown handler {target.value!r} (built-in handlers: {known})")]
    if target.kind is TargetKind.WEBHOOK and not target.value.startswith(("https://", "http://")):
        return [Problem(where, f"a webhook target is an http(s) URL, not {target.value!r}")]
    if target.kind is TargetKind.DEPLOYMENT and not NAME_PATTERN.fullmatch(target.value):
        # Whether the pipeline exists is known when the event arrives (projects create them); a
        # delivery to one that does not is dead at once, audited.
        return [Problem(where, f"a deployment target names a deployment pipeline of {rule.account}, "
                               f"not {target.value!r}")]
    if target.kind is TargetKind.PIPELINE:
        return _pipeline_target_problems(target, where)
    return []


def _pipeline_target_problems(target: EventTarget, where: str) -> list[Problem]:
    """A pipeline target names a pipeline of the rule's account and the service principal that
    starts its runs (the pipeline itself may be created after the rule)."""
    if not NAME_PATTERN.fullmatch(target.value) or target.value.endswith("-"):
        return [Problem(f"{where}.pipeline", f"{target.value!r} is not a pipeline name")]
    if target.run_as is None:
        return [Problem(f"{where}.runAs", "a pipeline target starts its runs as a service principal: name it "
                                          "with runAs")]
    return []


def _account_problems(account: Account, existing: Account | None, result: OrgState) -> list[Problem]:
    where = f"accounts[{account.name}]"
    problems: list[Problem] = []
    if account.kind is AccountKind.WORKLOAD and account.stage is None:
        problems.append(Problem(f"{where}.stage", "a workload account needs a stage (dev, test or prod)"))
    if account.kind is not AccountKind.WORKLOAD and account.stage is not None:
        problems.append(Problem(f"{where}.stage", f"only workload accounts have a stage, not {account.kind}"))
    if (account.kind is AccountKind.MANAGEMENT) != (account.name == MANAGEMENT_ACCOUNT):
        problems.append(
            Problem(f"{where}.kind", f"the management account is the one named {MANAGEMENT_ACCOUNT!r}")
        )
    if account.ou is not None and account.ou not in result.units:
        problems.append(Problem(f"{where}.ou", f"unknown organizational unit {account.ou!r}"))
    if existing is not None and existing.kind is not account.kind:
        problems.append(
            Problem(f"{where}.kind", f"is {existing.kind}; an account's kind cannot change")
        )
    return problems


def diff(current: OrgState, result: OrgState) -> list[Change]:
    changes: list[Change] = []
    changes += _diff_named("org-unit", current.units, result.units, delete=False)
    changes += _diff_named("account", current.accounts, result.accounts, delete=False)
    changes += _diff_named("principal", current.principals, result.principals, delete=False)
    custom_now = {k: v for k, v in current.roles.items() if not v.builtin}
    custom_then = {k: v for k, v in result.roles.items() if not v.builtin}
    changes += _diff_named("role", custom_now, custom_then, delete=True)
    changes += _diff_named("policy", current.policies, result.policies, delete=True)
    changes += _diff_named("event-bus-policy", current.bus_policies, result.bus_policies, delete=True)
    changes += _diff_named("event-rule", current.rules, result.rules, delete=True)
    changes += _diff_named("blueprint", current.blueprints, result.blueprints, delete=True)
    for b in sorted(result.bindings - current.bindings):
        changes.append(Change("role-binding", ChangeAction.CREATE, _binding_name(b), after=asdict(b)))
    for b in sorted(current.bindings - result.bindings):
        changes.append(Change("role-binding", ChangeAction.DELETE, _binding_name(b), before=asdict(b)))
    return changes


def _binding_name(b: RoleBinding) -> str:
    return f"{b.principal} as {b.role} in {b.account}"


def _diff_named(kind: str, now: dict[str, Any], then: dict[str, Any], *, delete: bool) -> list[Change]:
    changes: list[Change] = []
    for name in sorted(then):
        after = asdict(then[name])
        if name not in now:
            changes.append(Change(kind, ChangeAction.CREATE, name, after=after))
        elif (before := asdict(now[name])) != after:
            changes.append(Change(kind, ChangeAction.UPDATE, name, before=before, after=after))
    if delete:
        for name in sorted(set(now) - set(then)):
            changes.append(Change(kind, ChangeAction.DELETE, name, before=asdict(now[name])))
    return changes
