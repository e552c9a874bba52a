"""Account vending: requests for accounts, decided by the org admin. An approval creates the
account in its OU with its blueprint's baseline, in one transaction; everything the baseline makes
carries ``managed_by = "blueprint:<name>"`` so that ``charter apply`` leaves it alone."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from charter.domain import commands as c
from charter.domain.account_requests import AccountRequest, RequestStatus
from charter.domain.authz import Action, Resource
from charter.domain.blueprints import Baseline, Blueprint
from charter.domain.catalog import Share
from charter.domain.crn import CRN
from charter.domain.events import Event
from charter.domain.events import event_type as _event_type
from charter.domain.org import MANAGEMENT_ACCOUNT, Account, AccountKind, OrgState, Stage
from charter.domain.plan import Problem, validate
from charter.errors import Conflict, NotFound, ValidationError
from charter.services.handlers.org import require_org
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate


@dataclass(frozen=True, slots=True)
class Vended:
    request: AccountRequest
    account: Account
    baseline: Baseline


def _new_id(now: datetime) -> str:
    # Time-ordered, so the listing reads oldest first.
    return f"{int(now.timestamp() * 1_000_000):016x}{secrets.token_hex(4)}"


def _held_roles(ctx: HandlerContext) -> list[str]:
    bound = ctx.uow.org.roles_of(ctx.identity.principal)
    return sorted({r for account, roles in bound.items() for r in ctx.identity.scope_roles(account, roles)})


def _resource(request: AccountRequest | None, **attrs: Any) -> Resource:
    crn = request.crn if request else CRN(MANAGEMENT_ACCOUNT, "org", "account-request", "*")
    base: dict[str, Any] = {}
    if request is not None:
        base = {"requested_by": request.requested_by, "account_name": request.account, "ou": request.ou,
                "blueprint": request.blueprint, "status": str(request.status)}
    return Resource(crn, "AccountRequest", {**base, **attrs})


def _check_vendable(state: OrgState, account: str, ou: str, kind: AccountKind, stage: Stage | None,
                    blueprint_name: str) -> Blueprint:
    if account in state.accounts:
        raise Conflict(f"account {account} already exists", account=account)
    if ou not in state.units:
        raise ValidationError(f"unknown organizational unit {ou!r}", field="ou", ou=ou)
    blueprint = state.blueprints.get(blueprint_name)
    if blueprint is None:
        known = ", ".join(sorted(state.blueprints)) or "none declared in charter.yaml"
        raise ValidationError(f"unknown blueprint {blueprint_name!r} (blueprints: {known})", field="blueprint",
                              blueprint=blueprint_name)
    if not blueprint.applies_to(kind, stage):
        wanted = f"{blueprint.kind}" + (f"/{blueprint.stage}" if blueprint.stage else "")
        given = f"{kind}" + (f"/{stage}" if stage else "")
        raise ValidationError(f"blueprint {blueprint.name} is for {wanted} accounts, not {given}",
                              field="blueprint", blueprint=blueprint.name)
    return blueprint


def _kind_and_stage(cmd: c.RequestAccount) -> tuple[AccountKind, Stage | None]:
    try:
        kind = AccountKind(cmd.kind)
    except ValueError:
        raise ValidationError(f"unknown account kind {cmd.kind!r}: one of "
                              f"{', '.join(k for k in AccountKind if k is not AccountKind.MANAGEMENT)}",
                              field="kind") from None
    try:
        stage = Stage(cmd.stage) if cmd.stage else None
    except ValueError:
        raise ValidationError(f"unknown stage {cmd.stage!r}: dev, test or prod", field="stage") from None
    return kind, stage


def request_account(cmd: c.RequestAccount, ctx: HandlerContext) -> AccountRequest:
    require_org(ctx.uow)
    # Decided before the request is checked, so a caller who may not ask learns nothing more.
    ctx.authorize(Action.REQUEST_ACCOUNT, _resource(None, requested_by=ctx.identity.principal,
                                                    requester_roles=_held_roles(ctx)))
    kind, stage = _kind_and_stage(cmd)
    now = ctx.clock.now()
    request = AccountRequest(_new_id(now), cmd.account, cmd.ou, kind, stage, cmd.blueprint, cmd.reason,
                             ctx.identity.principal, now)
    resource = _resource(request)
    _check_vendable(ctx.uow.org.load_state(), request.account, request.ou, kind, stage, request.blueprint)
    if ctx.uow.account_requests.pending_for(request.account) is not None:
        raise Conflict(f"account {request.account} is already requested and pending", account=request.account)
    ctx.uow.account_requests.add(request)
    ctx.audit(Action.REQUEST_ACCOUNT, resource, account=request.account, ou=request.ou, kind=str(kind),
              stage=str(stage or ""), blueprint=request.blueprint, reason=request.reason)
    _emit_state(ctx, request, None)
    return request


def _emit_state(ctx: HandlerContext, request: AccountRequest, previous: RequestStatus | None) -> None:
    ctx.emit(Event(_event_type("org", "account-request", "state-changed"), MANAGEMENT_ACCOUNT, str(request.crn), {
        "id": request.id, "account": request.account, "ou": request.ou, "blueprint": request.blueprint,
        "status": str(request.status), "previous_status": str(previous) if previous else None,
        "requested_by": request.requested_by, "actor": ctx.identity.principal, "comment": request.comment}))


def _require(ctx: HandlerContext, request_id: str) -> AccountRequest:
    found = ctx.uow.account_requests.get(request_id) if len(request_id) <= 32 else None
    if found is None:
        ctx.authorize(Action.LIST_ACCOUNT_REQUESTS, _resource(None))
        raise NotFound(f"no account request {request_id!r}", request=request_id[:32])
    return found


def list_requests(cmd: c.ListAccountRequests, ctx: HandlerContext) -> Page[AccountRequest]:
    require_org(ctx.uow)
    ctx.authorize(Action.LIST_ACCOUNT_REQUESTS, _resource(None))
    try:
        status = RequestStatus(cmd.status) if cmd.status else None
    except ValueError:
        raise ValidationError(f"unknown status {cmd.status!r}: Pending, Approved or Rejected",
                              field="status") from None
    items = ctx.uow.account_requests.list(status, None, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda r: r.id)


def get_request(cmd: c.GetAccountRequest, ctx: HandlerContext) -> AccountRequest:
    require_org(ctx.uow)
    request = _require(ctx, cmd.id)
    ctx.authorize(Action.READ_ACCOUNT_REQUEST, _resource(request))
    return request


def decide(cmd: c.DecideAccountRequest, ctx: HandlerContext) -> AccountRequest:
    require_org(ctx.uow)
    request = _require(ctx, cmd.id)
    action = Action.APPROVE_ACCOUNT_REQUEST if cmd.approve else Action.REJECT_ACCOUNT_REQUEST
    resource = _resource(request)
    ctx.authorize(action, resource)
    decided = request.decide(RequestStatus.APPROVED if cmd.approve else RequestStatus.REJECTED,
                             ctx.identity.principal, cmd.comment, ctx.clock.now())
    if not cmd.approve:
        ctx.uow.account_requests.save(decided)
        ctx.audit(action, resource, account=request.account, comment=decided.comment)
        _emit_state(ctx, decided, request.status)
        return decided
    vended = _vend(ctx, decided)
    ctx.uow.account_requests.save(decided)
    ctx.audit(action, resource, account=request.account, ou=request.ou, blueprint=request.blueprint,
              comment=decided.comment, bindings=[f"{b.principal} as {b.role}" for b in vended.baseline.bindings],
              rules=[r.name for r in vended.baseline.rules], imports=[i.key for i in vended.baseline.imports])
    _emit_state(ctx, decided, request.status)
    return decided


def _vend(ctx: HandlerContext, request: AccountRequest) -> Vended:
    repo = ctx.uow.org
    current = repo.load_state()
    blueprint = _check_vendable(current, request.account, request.ou, request.kind, request.stage,
                                request.blueprint)
    account = Account(request.account, request.kind, request.stage, request.ou,
                      f"Vended from blueprint {blueprint.name} for {request.requested_by}")
    baseline = blueprint.baseline(account.name, request.requested_by)
    result = replace(current, accounts={**current.accounts, account.name: account},
                     bindings=current.bindings | set(baseline.bindings),
                     bus_policies={**current.bus_policies,
                                   **({account.name: baseline.bus_policy} if baseline.bus_policy else {})},
                     rules={**current.rules, **{r.key: r for r in baseline.rules}})
    where = f"blueprints[{blueprint.name}]"
    problems = validate(current, result)
    for i, item in enumerate(baseline.imports):
        if ctx.uow.catalog.get_portfolio(item.account, item.portfolio) is None:
            problems.append(Problem(f"{where}.imports[{i}]", f"no portfolio {item.portfolio} in {item.account}"))
    if problems:
        listed = [{"field": p.field, "reason": p.reason} for p in problems]
        raise ValidationError(f"account {account.name} was not vended from blueprint {blueprint.name}: "
                              + "; ".join(f"{p.field}: {p.reason}" for p in problems),
                              blueprint=blueprint.name, problems=listed)
    repo.put_account(account)
    for binding in baseline.bindings:
        repo.add_binding(binding)
    if baseline.bus_policy is not None:
        repo.put_bus_policy(baseline.bus_policy)
    for rule in baseline.rules:
        repo.put_rule(rule)
    for item in baseline.imports:
        share = Share(item.account, item.portfolio, account.name, blueprint.manager)
        if share not in ctx.uow.catalog.list_shares(item.account, item.portfolio):
            ctx.uow.catalog.add_share(share)
            ctx.emit(Event(_event_type("catalog", "portfolio", "shared"), item.account,
                           str(CRN(item.account, "catalog", "portfolio", item.portfolio)),
                           {"portfolio": item.portfolio, "target": account.name, "managed_by": blueprint.manager}))
    ctx.emit(Event(_event_type("org", "account", "created"), account.name, str(account.crn), {
        "account": account.name, "kind": str(account.kind), "stage": str(account.stage or ""), "ou": account.ou,
        "blueprint": blueprint.name, "request": request.id}))
    for binding in baseline.bindings:
        ctx.emit(Event(_event_type("iam", "role-binding", "changed"), account.name, str(binding.crn),
                       {"action": "create", "after": asdict(binding)}))
    for rule in baseline.rules:
        ctx.emit(Event(_event_type("events", "rule", "created"), rule.account, str(rule.crn),
                       {"name": rule.name, "managed_by": rule.managed_by}))
    return Vended(request, account, baseline)


HANDLERS: dict[type, Any] = {
    c.RequestAccount: request_account,
    c.ListAccountRequests: list_requests,
    c.GetAccountRequest: get_request,
    c.DecideAccountRequest: decide,
}
