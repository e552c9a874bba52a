"""The organization: first start, ``charter apply`` and the directory reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from charter.domain import commands as c
from charter.domain.authz import Action
from charter.domain.catalog import Grant, Portfolio, Share
from charter.domain.catalog_plan import DeclaredPortfolio, diff_portfolios
from charter.domain.events import Event, event_type
from charter.domain.identity import ApiToken, CredentialKind, Secret
from charter.domain.names import check_name
from charter.domain.org import (
    ADMIN_PRINCIPAL,
    MANAGEMENT_ACCOUNT,
    Account,
    AccountKind,
    Organization,
    OrgPolicy,
    OrgState,
    Principal,
    PrincipalKind,
    Role,
    RoleBinding,
    RoleDefinition,
)
from charter.domain.plan import (
    Change,
    ChangeAction,
    Problem,
    diff,
    managed_conflicts,
    merge,
    validate,
)
from charter.errors import Conflict, NotFound
from charter.services import resources
from charter.services.messagebus import HandlerContext
from charter.services.orgspec import declared_portfolios, desired_state, parse_document, refuse
from charter.services.ports import Page, UnitOfWork, paginate


@dataclass(frozen=True, slots=True)
class InitResult:
    org: Organization
    admin: str
    token: ApiToken
    bearer: str


@dataclass(frozen=True, slots=True)
class ApplyResult:
    changes: list[Change]
    applied: bool


@dataclass(frozen=True, slots=True)
class PolicyView:
    defaults: list[OrgPolicy]
    organization: list[OrgPolicy]
    roles: list[RoleDefinition]


@dataclass(frozen=True, slots=True)
class OrgView:
    org: Organization
    state: OrgState


def require_org(uow: UnitOfWork) -> Organization:
    org = uow.org.get_org()
    if org is None:
        raise NotFound("no organization yet: run `charter init --org NAME` first")
    return org


def init_org(cmd: c.InitOrg, ctx: HandlerContext) -> InitResult:
    name = check_name(cmd.name, "organization")
    uow = ctx.uow
    if uow.org.get_org() is not None:
        raise Conflict(f"the organization already exists ({require_org(uow).name}); init runs once")
    now = ctx.clock.now()
    org = Organization(name, now)
    uow.org.add_org(org)
    uow.org.put_account(Account(MANAGEMENT_ACCOUNT, AccountKind.MANAGEMENT, description="The organization's management account"))
    uow.org.put_principal(Principal(ADMIN_PRINCIPAL, PrincipalKind.PERSON, "Organization administrator"))
    uow.org.add_binding(RoleBinding(ADMIN_PRINCIPAL, MANAGEMENT_ACCOUNT, Role.ORG_ADMIN))
    secret = Secret.mint(CredentialKind.TOKEN)
    token = ApiToken(secret.id, ADMIN_PRINCIPAL, secret.digest, now, "system",
                     now + timedelta(days=ctx.limits.token_max_days), description="created by charter init")
    uow.tokens.add(token)
    ctx.audit("org:Init", resources.organization(org), org=name, admin=ADMIN_PRINCIPAL, token=token.id)
    ctx.emit(Event(event_type("org", "organization", "created"), MANAGEMENT_ACCOUNT, str(org.crn), {"name": name}))
    ctx.emit(Event(event_type("org", "account", "created"), MANAGEMENT_ACCOUNT,
                   str(Account(MANAGEMENT_ACCOUNT, AccountKind.MANAGEMENT).crn), {"account": MANAGEMENT_ACCOUNT}))
    return InitResult(org, ADMIN_PRINCIPAL, token, secret.bearer)


@dataclass(frozen=True, slots=True)
class _Planned:
    org: Organization
    current: OrgState
    result: OrgState
    changes: list[Change]
    portfolios: dict[str, DeclaredPortfolio]
    catalog_now: dict[str, DeclaredPortfolio]
    catalog_changes: list[Change]


def _catalog_now(ctx: HandlerContext, declared: dict[str, DeclaredPortfolio]) -> dict[str, DeclaredPortfolio]:
    """The declared portfolios as they stand, with the shares and grants a file manages (a share a
    blueprint made carries its manager and is no business of the file's)."""
    out = {}
    catalog = ctx.uow.catalog
    for key, want in declared.items():
        found = catalog.get_portfolio(want.portfolio.account, want.portfolio.name)
        if found is not None:
            shares = frozenset(s.target for s in catalog.list_shares(found.account, found.name) if not s.managed_by)
            grants = frozenset(g.pattern for g in catalog.list_grants(found.account, found.name))
            out[key] = DeclaredPortfolio(found, shares, grants)
    return out


def _catalog_problems(ctx: HandlerContext, result: OrgState, declared: dict[str, DeclaredPortfolio]) -> list[Problem]:
    problems: list[Problem] = []
    for key, want in sorted(declared.items()):
        where = f"portfolios[{key}]"
        if want.portfolio.account not in result.accounts:
            problems.append(Problem(f"{where}.account", f"unknown account {want.portfolio.account!r}"))
        for target in sorted(want.shares):
            known = result.units if target.startswith("ou:") else result.accounts
            if target.removeprefix("ou:") not in known:
                problems.append(Problem(f"{where}.shares", f"unknown account or unit {target!r}"))
    for bp in result.blueprints.values():
        for i, item in enumerate(bp.imports):
            if item.key not in declared and ctx.uow.catalog.get_portfolio(item.account, item.portfolio) is None:
                problems.append(Problem(f"blueprints[{bp.name}].imports[{i}]",
                                        f"no portfolio {item.portfolio} in {item.account}; declare it under portfolios"))
    return problems


def _plan(cmd: c.ApplyOrg | c.PlanOrg, ctx: HandlerContext, action: Action) -> _Planned:
    org = require_org(ctx.uow)
    ctx.authorize(action, resources.organization(org))
    doc = parse_document(cmd.document, cmd.filename)
    problems: list[Problem] = []
    if doc.organization != org.name:
        problems.append(Problem("organization", f"this server holds organization {org.name!r}, not {doc.organization!r}"))
    desired = desired_state(doc, cmd.filename)
    declared = declared_portfolios(doc, cmd.filename)
    current = ctx.uow.org.load_state()
    result = merge(current, desired)
    problems += managed_conflicts(current, desired)
    problems += validate(current, result)
    problems += _catalog_problems(ctx, result, declared)
    problems += [Problem(f"policies[{pid}].cedar", reason)
                 for pid, reason in ctx.authorizer.engine.check(list(result.policies.values())).items()]
    if problems:
        raise refuse(cmd.filename, problems)
    catalog_now = _catalog_now(ctx, declared)
    return _Planned(org, current, result, diff(current, result), declared, catalog_now,
                    diff_portfolios(catalog_now, declared))


def plan_org(cmd: c.PlanOrg, ctx: HandlerContext) -> ApplyResult:
    planned = _plan(cmd, ctx, Action.PLAN_ORG)
    return ApplyResult(planned.changes + planned.catalog_changes, applied=False)


def apply_org(cmd: c.ApplyOrg, ctx: HandlerContext) -> ApplyResult:
    planned = _plan(cmd, ctx, Action.APPLY_ORG)
    org, current, result, changes = planned.org, planned.current, planned.result, planned.changes
    repo = ctx.uow.org
    # Parents before children, roles before the bindings that name them, bindings gone before roles.
    for name in sorted(result.units, key=lambda n: len(result.ou_ancestors(n))):
        if result.units[name] != current.units.get(name):
            repo.put_unit(result.units[name])
    for account in result.accounts.values():
        if account != current.accounts.get(account.name):
            repo.put_account(account)
    for principal in result.principals.values():
        if principal != current.principals.get(principal.name):
            repo.put_principal(principal)
    for role in result.roles.values():
        if not role.builtin and role != current.roles.get(role.name):
            repo.put_role(role)
    for binding in current.bindings - result.bindings:
        repo.delete_binding(binding)
    for binding in result.bindings - current.bindings:
        repo.add_binding(binding)
    for name, role in current.roles.items():
        if not role.builtin and name not in result.roles:
            repo.delete_role(name)
    policy_changed = current.policies != result.policies
    for pid in set(current.policies) - set(result.policies):
        repo.delete_policy(pid)
    for policy in result.policies.values():
        if policy != current.policies.get(policy.id):
            repo.put_policy(policy)
    if policy_changed:
        repo.set_policy_revision(org.policy_revision + 1)
    for bus_account in set(current.bus_policies) - set(result.bus_policies):
        repo.delete_bus_policy(bus_account)
    for bus_policy in result.bus_policies.values():
        if bus_policy != current.bus_policies.get(bus_policy.account):
            repo.put_bus_policy(bus_policy)
    for key in set(current.rules) - set(result.rules):
        repo.delete_rule(current.rules[key].account, current.rules[key].name)
    for rule in result.rules.values():
        if rule != current.rules.get(rule.key):
            repo.put_rule(rule)
    for name in set(current.blueprints) - set(result.blueprints):
        repo.delete_blueprint(name)
    for blueprint in result.blueprints.values():
        if blueprint != current.blueprints.get(blueprint.name):
            repo.put_blueprint(blueprint)
    for change in changes:
        _emit_change(ctx, change, current, result)
    _apply_catalog(ctx, planned)
    every = changes + planned.catalog_changes
    ctx.audit(Action.APPLY_ORG, resources.organization(org), file=cmd.filename,
              changes=[ch.describe() for ch in every])
    return ApplyResult(every, applied=True)


def _apply_catalog(ctx: HandlerContext, planned: _Planned) -> None:
    catalog, now = ctx.uow.catalog, ctx.clock.now()
    for key, want in planned.portfolios.items():
        p = want.portfolio
        have = planned.catalog_now.get(key)
        if have is None:
            catalog.add_portfolio(p, now, ctx.identity.principal)
            _emit_catalog(ctx, p, "created", {"provider": p.provider})
        elif have.portfolio != p:
            catalog.update_portfolio(p)
            _emit_catalog(ctx, p, "updated", {"description": p.description, "provider": p.provider})
        had_shares = have.shares if have else frozenset()
        had_grants = have.grants if have else frozenset()
        existing = {s.target: s for s in catalog.list_shares(p.account, p.name)}
        for target in sorted(had_shares - want.shares):
            catalog.delete_share(Share(p.account, p.name, target))
            _emit_catalog(ctx, p, "unshared", {"target": target})
        for target in sorted(want.shares - had_shares):
            if target in existing:  # made by a blueprint: the file now manages it
                catalog.delete_share(existing[target])
            catalog.add_share(Share(p.account, p.name, target))
            _emit_catalog(ctx, p, "shared", {"target": target})
        for pattern in sorted(had_grants - want.grants):
            catalog.delete_grant(Grant(p.account, p.name, pattern))
            _emit_catalog(ctx, p, "grant-revoked", {"pattern": pattern})
        for pattern in sorted(want.grants - had_grants):
            catalog.add_grant(Grant(p.account, p.name, pattern))
            _emit_catalog(ctx, p, "granted", {"pattern": pattern})


def _emit_catalog(ctx: HandlerContext, portfolio: Portfolio, what: str, data: dict[str, Any]) -> None:
    ctx.emit(Event(event_type("catalog", "portfolio", what), portfolio.account, str(portfolio.crn),
                   {"portfolio": portfolio.name, **data, "via": "charter apply"}))


def _emit_change(ctx: HandlerContext, change: Change, current: OrgState, result: OrgState) -> None:
    """One event per change, its subject the CRN of the thing changed (as the thing names itself)."""
    data = {"action": str(change.action), "name": change.name, "before": change.before, "after": change.after}
    if change.kind == "role-binding":
        binding = RoleBinding(**(change.after or change.before or {}))
        ctx.emit(Event(event_type("iam", "role-binding", "changed"), binding.account, str(binding.crn), data))
        return
    state = current if change.action is ChangeAction.DELETE else result
    items: dict[str, dict[str, Any]] = {
        "org-unit": state.units, "account": state.accounts, "principal": state.principals,
        "role": state.roles, "policy": state.policies, "event-bus-policy": state.bus_policies,
        "event-rule": state.rules, "blueprint": state.blueprints,
    }
    crn = items[change.kind][change.name].crn
    what = {ChangeAction.CREATE: "created", ChangeAction.UPDATE: "updated", ChangeAction.DELETE: "deleted"}
    # An account's events come from the account itself; everything else from the account holding it.
    source = change.name if change.kind == "account" else crn.account
    ctx.emit(Event(event_type(crn.service, crn.type, what[change.action]), source, str(crn), data))


def get_org(cmd: c.GetOrg, ctx: HandlerContext) -> OrgView:
    org = require_org(ctx.uow)
    ctx.authorize(Action.READ_ORG, resources.organization(org))
    return OrgView(org, ctx.uow.org.load_state())


def list_accounts(cmd: c.ListAccounts, ctx: HandlerContext) -> Page[Account]:
    org = require_org(ctx.uow)
    ctx.authorize(Action.LIST_ACCOUNTS, resources.organization(org))
    items = ctx.uow.org.list_accounts(cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda a: a.name)


def get_account(cmd: c.GetAccount, ctx: HandlerContext) -> Account:
    account = ctx.uow.org.get_account(cmd.name)
    if account is None:
        org = require_org(ctx.uow)
        # Decide before saying whether it exists, so absence leaks only to those who may read.
        ctx.authorize(Action.LIST_ACCOUNTS, resources.organization(org))
        raise NotFound(f"unknown account {cmd.name!r}", account=cmd.name)
    ctx.authorize(Action.READ_ACCOUNT, resources.account(account))
    return account


def list_principals(cmd: c.ListPrincipals, ctx: HandlerContext) -> Page[Principal]:
    org = require_org(ctx.uow)
    ctx.authorize(Action.LIST_PRINCIPALS, resources.organization(org))
    items = ctx.uow.org.list_principals(cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda p: p.name)


def get_principal(cmd: c.GetPrincipal, ctx: HandlerContext) -> tuple[Principal, dict[str, set[str]]]:
    org = require_org(ctx.uow)
    principal = ctx.uow.org.get_principal(cmd.name)
    if principal is None:
        ctx.authorize(Action.LIST_PRINCIPALS, resources.organization(org))
        raise NotFound(f"unknown principal {cmd.name!r}", principal=cmd.name)
    ctx.authorize(Action.READ_PRINCIPAL, resources.principal(principal))
    return principal, ctx.uow.org.roles_of(principal.name)


def list_role_bindings(cmd: c.ListRoleBindings, ctx: HandlerContext) -> list[RoleBinding]:
    get_account(c.GetAccount(cmd.account), ctx)
    ctx.authorize(Action.LIST_ROLE_BINDINGS, resources.role_bindings(cmd.account))
    return ctx.uow.org.list_bindings(cmd.account)


def list_policies(cmd: c.ListPolicies, ctx: HandlerContext) -> PolicyView:
    require_org(ctx.uow)
    ctx.authorize(Action.LIST_POLICIES, resources.policies())
    state = ctx.uow.org.load_state()
    return PolicyView(ctx.authorizer.engine.default_policies(), ctx.uow.org.list_policies(),
                      sorted(state.roles.values(), key=lambda r: r.name))


HANDLERS: dict[type, Any] = {
    c.InitOrg: init_org,
    c.ApplyOrg: apply_org,
    c.PlanOrg: plan_org,
    c.GetOrg: get_org,
    c.ListAccounts: list_accounts,
    c.GetAccount: get_account,
    c.ListPrincipals: list_principals,
    c.GetPrincipal: get_principal,
    c.ListRoleBindings: list_role_bindings,
    c.ListPolicies: list_policies,
}
