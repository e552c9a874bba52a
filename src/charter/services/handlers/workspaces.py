"""Workspaces: a team's space in an account, launched from a workspace product (team-workspace).

Its members who exist as principals get a role binding in the account, managed by the workspace
(``charter apply`` leaves it alone; terminating the workspace removes it). Its tags (cost centre,
business unit, environment) are stored with it.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from charter.domain import commands as c
from charter.domain.authz import Action, Resource
from charter.domain.catalog import ProductKind
from charter.domain.crn import CRN
from charter.domain.events import Event, event_type
from charter.domain.names import check_name
from charter.domain.org import Account, PrincipalKind, RoleBinding
from charter.domain.projects import (
    WORKSPACE_MEMBER_ROLE,
    LaunchStatus,
    Workspace,
    WorkspaceMember,
    builtins,
    render,
    workspace_manager,
)
from charter.errors import Conflict, InvalidTransition, NotFound, ValidationError
from charter.services.handlers.catalog import launchable_version
from charter.services.launch import validate_parameters
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate


def _resource(account: Account, name: str, workspace: Workspace | None = None) -> Resource:
    attrs: dict[str, Any] = {"account_kind": str(account.kind), "stage": str(account.stage or "")}
    if workspace is not None:
        attrs |= {"product": workspace.product, "launched_by": workspace.launched_by}
    return Resource(CRN(account.name, "catalog", "workspace", name), "Workspace", attrs)


def _require(ctx: HandlerContext, account: Account, name: str) -> Workspace:
    workspace = ctx.uow.projects.get_workspace(account.name, check_name(name, "workspace"))
    if workspace is None:
        ctx.authorize(Action.LIST_WORKSPACES, _resource(account, "*"))
        raise NotFound(f"no workspace {name!r} in {account.name}", workspace=name)
    return workspace


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{where} must render to a list of names", field=where)
    return tuple(check_name(v, where) for v in value)


def _details(w: Workspace) -> dict[str, Any]:
    return {"workspace": w.name, "team": w.team, "product": w.product, "product_account": w.product_account,
            "version": w.version, "product_crn": str(w.product_crn), "parameters": w.parameters,
            "members": [asdict(m) for m in w.members], "cost_centre": w.cost_centre,
            "business_unit": w.business_unit, "environment": w.environment, "tags": dict(w.tags),
            "data_access": list(w.data_access), "status": str(w.status)}


def _bind(ctx: HandlerContext, account: Account, manager: str, principals: tuple[str, ...]) -> tuple[WorkspaceMember, ...]:
    bound = {(b.principal, b.role) for b in ctx.uow.org.list_bindings(account.name)}
    members = []
    for name in dict.fromkeys(principals):
        principal = ctx.uow.org.get_principal(name)
        # People only: a workspace does not hand a service principal (a bot's execution role) a role.
        if principal is None or principal.kind is not PrincipalKind.PERSON or (name, WORKSPACE_MEMBER_ROLE) in bound:
            members.append(WorkspaceMember(name, WORKSPACE_MEMBER_ROLE, bound=False))
            continue
        binding = RoleBinding(name, account.name, WORKSPACE_MEMBER_ROLE, managed_by=manager)
        ctx.uow.org.add_binding(binding)
        members.append(WorkspaceMember(name, WORKSPACE_MEMBER_ROLE))
        ctx.emit(Event(event_type("iam", "role-binding", "changed"), account.name, str(binding.crn),
                       {"action": "create", "name": f"{name} as {binding.role} in {account.name}",
                        "before": None, "after": asdict(binding)}))
    return tuple(members)


def create_workspace(cmd: c.CreateWorkspace, ctx: HandlerContext) -> Workspace:
    account = ctx.account(cmd.account)
    name = check_name(cmd.name, "workspace")
    ctx.authorize(Action.LAUNCH_PRODUCT, _resource(account, name))
    launch = launchable_version(ctx, account, cmd.product, cmd.version, ProductKind.WORKSPACE)
    if ctx.uow.projects.get_workspace(account.name, name) is not None:
        raise Conflict(f"workspace {name} already exists in {account.name}", workspace=name)
    values = validate_parameters(launch.version.spec.parameters, dict(cmd.parameters))
    context = {**values, **builtins(project=None, workspace=name, account=account.name,
                                    product=launch.product.name, version=launch.version.version,
                                    launched_by=ctx.identity.principal)}
    spec = render(launch.version.spec.provisions, context).get("workspace") or {}
    team = check_name(_text(spec.get("name", name)), "provisions.workspace.name")
    tags = {str(k): _text(v) for k, v in (spec.get("tags") or {}).items()}
    principals = _names(spec.get("members"), "provisions.workspace.members")
    data = values.get("dataAccess", values.get("datasets", []))
    now = ctx.clock.now()
    manager = workspace_manager(account.name, name)
    workspace = Workspace(
        account.name, name, team, launch.product.account, launch.product.name, launch.version.version, values,
        ctx.identity.principal, now, now, _bind(ctx, account, manager, principals),
        cost_centre=_text(values.get("costCentre", tags.get("cost-centre", "")))[:200],
        business_unit=_text(values.get("businessUnit", tags.get("business-unit", "")))[:200],
        environment=_text(values.get("environment", tags.get("environment", "")))[:200],
        tags=tuple(sorted(tags.items())), data_access=_names(data if isinstance(data, list) else None, "dataAccess"))
    ctx.uow.projects.add_workspace(workspace)
    details = _details(workspace)
    ctx.audit(Action.LAUNCH_PRODUCT, _resource(account, name, workspace), **details)
    ctx.emit(Event(event_type("catalog", "workspace", "launched"), account.name, str(workspace.crn),
                   {**details, "launched_by": workspace.launched_by}))
    return workspace


def list_workspaces(cmd: c.ListWorkspaces, ctx: HandlerContext) -> Page[Workspace]:
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_WORKSPACES, _resource(account, "*"))
    items = ctx.uow.projects.list_workspaces(account.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda w: w.name)


def get_workspace(cmd: c.GetWorkspace, ctx: HandlerContext) -> Workspace:
    account = ctx.account(cmd.account)
    workspace = _require(ctx, account, cmd.name)
    ctx.authorize(Action.READ_WORKSPACE, _resource(account, workspace.name, workspace))
    return workspace


def terminate_workspace(cmd: c.TerminateWorkspace, ctx: HandlerContext) -> Workspace:
    account = ctx.account(cmd.account)
    workspace = _require(ctx, account, cmd.name)
    ctx.authorize(Action.TERMINATE_WORKSPACE, _resource(account, workspace.name, workspace))
    if workspace.status is not LaunchStatus.ACTIVE:
        raise InvalidTransition(f"{workspace.crn} is already {workspace.status}", status=str(workspace.status))
    removed = []
    for binding in ctx.uow.org.list_bindings(account.name):
        if binding.managed_by == workspace.managed_by:
            ctx.uow.org.delete_binding(binding)
            removed.append(f"{binding.principal} as {binding.role}")
            ctx.emit(Event(event_type("iam", "role-binding", "changed"), account.name, str(binding.crn),
                           {"action": "delete", "name": f"{binding.principal} as {binding.role} in {account.name}",
                            "before": asdict(binding), "after": None}))
    done = replace(workspace, status=LaunchStatus.TERMINATED, updated_at=ctx.clock.now())
    ctx.uow.projects.save_workspace(done)
    details = {**_details(done), "removed_bindings": removed}
    ctx.audit(Action.TERMINATE_WORKSPACE, _resource(account, workspace.name, done), **details)
    ctx.emit(Event(event_type("catalog", "workspace", "terminated"), account.name, str(done.crn),
                   {**details, "terminated_by": ctx.identity.principal}))
    return done


HANDLERS: dict[type, Any] = {
    c.CreateWorkspace: create_workspace,
    c.ListWorkspaces: list_workspaces,
    c.GetWorkspace: get_workspace,
    c.TerminateWorkspace: terminate_workspace,
}
