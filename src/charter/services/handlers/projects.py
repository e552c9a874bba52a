"""Projects: launched from a catalog product, updated to another version of it, terminated.

Launching is one command and so one transaction: the share and grant check, the parameters, the
project row, its model package group, its event rules and its pipelines either all commit or none
do. Pipelines are recorded (definition file and digest from the product version) so the pipelines
engine can start them; nothing runs here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from charter.domain import commands as c
from charter.domain.authz import Action, Resource
from charter.domain.catalog import ProductKind, ProductVersion
from charter.domain.crn import CRN
from charter.domain.events import Event, event_type
from charter.domain.names import check_name
from charter.domain.org import Account, OrgState
from charter.domain.projects import (
    LaunchStatus,
    Project,
    ProjectUpdate,
    ProvisionedResource,
    ResourceKind,
    builtins,
    render,
)
from charter.errors import Conflict, InvalidTransition, NotFound
from charter.services.handlers import deployments, pipelines
from charter.services.handlers.catalog import launchable_version
from charter.services.handlers.registry import add_group, artifact_store
from charter.services.launch import Plan, plan, validate_parameters
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate


@dataclass(frozen=True, slots=True)
class ProjectResult:
    """A project after a command, and what the command could not do as asked (kept groups)."""

    project: Project
    notes: tuple[str, ...] = ()


def _attrs(account: Account) -> dict[str, Any]:
    return {"account_kind": str(account.kind), "stage": str(account.stage or "")}


def _resource(account: Account, name: str, project: Project | None = None) -> Resource:
    attrs = _attrs(account)
    if project is not None:
        attrs |= {"product": project.product, "launched_by": project.launched_by}
    return Resource(CRN(account.name, "catalog", "project", name), "Project", attrs)


def _require(ctx: HandlerContext, account: Account, name: str) -> Project:
    project = ctx.uow.projects.get_project(account.name, check_name(name, "project"))
    if project is None:
        ctx.authorize(Action.LIST_PROJECTS, _resource(account, "*"))
        raise NotFound(f"no project {name!r} in {account.name}", project=name)
    return project


def _plan(ctx: HandlerContext, state: OrgState, account: Account, name: str, version: ProductVersion,
          parameters: dict[str, Any], workspace: str | None) -> tuple[dict[str, Any], Plan]:
    values = validate_parameters(version.spec.parameters, parameters)
    context = {**values, **builtins(project=name, workspace=workspace, account=account.name,
                                    product=version.product, version=version.version,
                                    launched_by=ctx.identity.principal)}
    provisions = render(version.spec.provisions, context)
    return values, plan(state, account.name, f"project:{account.name}/{name}", version, provisions)


def _packages(ctx: HandlerContext, account: str, group: str) -> int:
    return len(ctx.uow.registry.list_packages(account, group, None, 1000))


def _create_group(ctx: HandlerContext, account: Account, project: Project, p: Plan) -> None:
    group = p.group
    assert group is not None
    if ctx.uow.registry.get_group(account.name, group.name) is not None:
        raise Conflict(f"model package group {group.name} already exists in {account.name}; "
                       f"name the project differently", group=group.name, project=project.name)
    add_group(ctx, group, Resource(group.crn, "ModelPackageGroup", _attrs(account)),
              audit={"project": str(project.crn)}, data={"project": project.name})


def _put_rules(ctx: HandlerContext, state: OrgState, account: Account, project: Project, p: Plan,
               replacing: frozenset[str] = frozenset(), only: frozenset[str] | None = None) -> None:
    """``state``, read at the start of the command, tells which rules existed before it."""
    existing = {r.name: r for r in state.rules.values() if r.account == account.name}
    for planned in p.rules:
        rule = planned.rule
        if rule is None or (only is not None and planned.resource.crn not in only):
            continue
        found = existing.get(rule.name)
        if found is not None and not (rule.name in replacing and found.managed_by == project.managed_by):
            owner = found.managed_by or "charter.yaml"
            raise Conflict(f"rule {rule.name} already exists on the bus of {account.name} (managed by "
                           f"{owner}); nothing was provisioned", rule=rule.name, managed_by=owner)
        ctx.uow.org.put_rule(rule)
        ctx.audit("events:PutRule", Resource(rule.crn, "EventRule", _attrs(account)),
                  project=str(project.crn), targets=planned.resource.details["targets"])


def _delete_rule(ctx: HandlerContext, account: Account, project: Project, name: str) -> bool:
    found = next((r for r in ctx.uow.org.list_rules(account.name) if r.name == name), None)
    if found is None or found.managed_by != project.managed_by:
        return False
    ctx.uow.org.delete_rule(account.name, name)
    ctx.audit("events:DeleteRule", Resource(found.crn, "EventRule", _attrs(account)), project=str(project.crn))
    return True


def _details(project: Project) -> dict[str, Any]:
    return {"project": project.name, "product": project.product, "product_account": project.product_account,
            "version": project.version, "product_crn": str(project.product_crn), "parameters": project.parameters,
            "workspace": project.workspace, "status": str(project.status),
            "resources": [r.crn for r in project.resources],
            "pipelines": [{"name": r.name, **r.details} for r in project.of_kind(ResourceKind.PIPELINE)],
            "deployments": [{"name": r.name, **r.details} for r in project.of_kind(ResourceKind.DEPLOYMENT_PIPELINE)]}


def create_project(cmd: c.CreateProject, ctx: HandlerContext) -> ProjectResult:
    account = ctx.account(cmd.account)
    name = check_name(cmd.name, "project")
    resource = _resource(account, name)
    ctx.authorize(Action.LAUNCH_PRODUCT, resource)
    state = ctx.uow.org.load_state()
    launch = launchable_version(ctx, account, cmd.product, cmd.version, ProductKind.PROJECT, state)
    if ctx.uow.projects.get_project(account.name, name) is not None:
        raise Conflict(f"project {name} already exists in {account.name}", project=name)
    if cmd.workspace is not None:
        workspace = ctx.uow.projects.get_workspace(account.name, check_name(cmd.workspace, "workspace"))
        if workspace is None or workspace.status is not LaunchStatus.ACTIVE:
            raise NotFound(f"no active workspace {cmd.workspace!r} in {account.name}", workspace=cmd.workspace)
    values, p = _plan(ctx, state, account, name, launch.version, dict(cmd.parameters), cmd.workspace)
    now = ctx.clock.now()
    project = Project(account.name, name, launch.product.account, launch.product.name, launch.version.version,
                      values, ctx.identity.principal, now, now, cmd.workspace, resources=tuple(p.resources()))
    ctx.uow.projects.add_project(project)
    if p.group is not None:
        _create_group(ctx, account, project, p)
    _put_rules(ctx, state, account, project, p)
    deployments.provision(ctx, account, project)
    notes = _start_pipelines(ctx, account, project, launch.version)
    details = _details(project)
    ctx.audit(Action.LAUNCH_PRODUCT, _resource(account, name, project), **details, started=list(notes))
    ctx.emit(Event(event_type("catalog", "project", "launched"), account.name, str(project.crn),
                   {**details, "launched_by": project.launched_by}))
    return ProjectResult(project, notes)


def _start_pipelines(ctx: HandlerContext, account: Account, project: Project,
                     version: ProductVersion) -> tuple[str, ...]:
    """Create the pipelines the product starts on launch, from the version's own files, and start
    each once, as the launcher, in the launching transaction: a launch that cannot start its
    pipeline provisions nothing. The run itself is executed after commit by the pipeline runner."""
    store = artifact_store(ctx)
    notes = []
    for resource in project.of_kind(ResourceKind.PIPELINE):
        if not resource.details.get("start_on_launch"):
            continue
        files = {f.path: b"".join(store.open(version.account, f.sha256)) for f in version.files}
        definition = files[str(resource.details["definition"])].decode()
        # The launch's values become the pipeline's own, so a later run needs none of them again.
        parameters = {str(k): v if isinstance(v, str) else json.dumps(v)
                      for k, v in resource.details.get("parameters", {}).items()}
        pipeline = pipelines.create_pipeline(
            c.CreatePipeline(account.name, resource.name, definition, files, defaults=parameters), ctx)
        run = pipelines.start_run(c.StartPipelineRun(account.name, pipeline.name, {}), ctx)
        notes.append(f"started run {run.id} of pipeline {pipeline.name}")
    return tuple(notes)


def list_projects(cmd: c.ListProjects, ctx: HandlerContext) -> Page[Project]:
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_PROJECTS, _resource(account, "*"))
    items = ctx.uow.projects.list_projects(account.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda p: p.name)


def get_project(cmd: c.GetProject, ctx: HandlerContext) -> Project:
    account = ctx.account(cmd.account)
    project = _require(ctx, account, cmd.name)
    ctx.authorize(Action.READ_PROJECT, _resource(account, project.name, project))
    return project


def _kept_groups(ctx: HandlerContext, account: Account, groups: list[ProvisionedResource], why: str) -> list[str]:
    notes = []
    for group in groups:
        count = _packages(ctx, account.name, group.name)
        held = f"it holds {count} package{'s' if count != 1 else ''}" if count else "it holds no packages yet"
        notes.append(f"kept model package group {group.name} ({group.crn}): {held}; {why}")
    return notes


def update_project(cmd: c.UpdateProject, ctx: HandlerContext) -> ProjectResult:
    account = ctx.account(cmd.account)
    project = _require(ctx, account, cmd.name)
    ctx.authorize(Action.UPDATE_PROJECT, _resource(account, project.name, project))
    if project.status is not LaunchStatus.ACTIVE:
        raise InvalidTransition(f"{project.crn} is {project.status}; only an active project is updated",
                                status=str(project.status))
    state = ctx.uow.org.load_state()
    launch = launchable_version(ctx, account, project.product, cmd.version, ProductKind.PROJECT, state)
    if launch.product.account != project.product_account:
        raise Conflict(f"{project.crn} was launched from {project.product_crn}", product=project.product)
    # What the project was given carries over where the new version still declares it.
    declared = launch.version.spec.parameters.get("properties", {})
    carried = {k: v for k, v in project.parameters.items() if k in declared}
    values, p = _plan(ctx, state, account, project.name, launch.version, {**carried, **cmd.parameters},
                      project.workspace)
    old = {(r.kind, r.name): r for r in project.resources}
    new = {(r.kind, r.name): r for r in p.resources()}
    added = [r.crn for k, r in new.items() if k not in old]
    removed = [r.crn for k, r in old.items() if k not in new and k[0] is not ResourceKind.MODEL_PACKAGE_GROUP]
    changed = [r.crn for k, r in new.items() if k in old and old[k].details != r.details
               and k[0] is not ResourceKind.MODEL_PACKAGE_GROUP]
    kept_groups = [r for k, r in old.items() if k not in new and k[0] is ResourceKind.MODEL_PACKAGE_GROUP]
    notes = _kept_groups(ctx, account, kept_groups, f"version {launch.version.version} no longer declares it, "
                                                    "and a group is never deleted with its models")
    for key, resource in new.items():
        if key[0] is ResourceKind.MODEL_PACKAGE_GROUP and key in old and old[key].details != resource.details:
            notes.append(f"model package group {resource.name} keeps its readers "
                         f"({', '.join(old[key].details.get('readers', [])) or 'none'}): an update does not "
                         "change who may read existing models")
            new[key] = old[key]
    updated = replace(project, version=launch.version.version, parameters=values, updated_at=ctx.clock.now(),
                      resources=tuple(new.values()) + tuple(kept_groups))
    if p.group is not None and (ResourceKind.MODEL_PACKAGE_GROUP, p.group.name) not in old:
        _create_group(ctx, account, updated, p)
    for key, resource in old.items():
        if key[0] is ResourceKind.EVENT_RULE and (key not in new or new[key].details.get("on_bus") is False):
            _delete_rule(ctx, account, project, resource.name)
    _put_rules(ctx, state, account, updated, p, replacing=frozenset(n for (k, n) in old if k is ResourceKind.EVENT_RULE),
               only=frozenset(added + changed))
    entry = ProjectUpdate(ctx.clock.now(), ctx.identity.principal, project.version, launch.version.version,
                          values, tuple(added), tuple(changed), tuple(removed), tuple(r.crn for r in kept_groups),
                          tuple(notes))
    updated = replace(updated, history=(*project.history, entry))
    ctx.uow.projects.save_project(updated)
    deployments.provision(ctx, account, updated, replacing=True)
    deployments.disable(ctx, account, project, {n for (k, n) in old if k is ResourceKind.DEPLOYMENT_PIPELINE
                                                and (k, n) not in new})
    details = {**_details(updated), "from_version": project.version, "added": added, "changed": changed,
               "removed": removed, "kept": list(entry.kept), "notes": notes}
    ctx.audit(Action.UPDATE_PROJECT, _resource(account, project.name, updated), **details)
    ctx.emit(Event(event_type("catalog", "project", "updated"), account.name, str(updated.crn),
                   {**details, "updated_by": ctx.identity.principal}))
    return ProjectResult(updated, tuple(notes))


def terminate_project(cmd: c.TerminateProject, ctx: HandlerContext) -> ProjectResult:
    account = ctx.account(cmd.account)
    project = _require(ctx, account, cmd.name)
    ctx.authorize(Action.TERMINATE_PROJECT, _resource(account, project.name, project))
    if project.status is not LaunchStatus.ACTIVE:
        raise InvalidTransition(f"{project.crn} is already {project.status}", status=str(project.status))
    removed = [r.crn for r in project.of_kind(ResourceKind.EVENT_RULE)
               if _delete_rule(ctx, account, project, r.name)]
    notes = _kept_groups(ctx, account, list(project.of_kind(ResourceKind.MODEL_PACKAGE_GROUP)),
                         "terminating a project keeps its models and their history")
    done = replace(project, status=LaunchStatus.TERMINATED, updated_at=ctx.clock.now())
    ctx.uow.projects.save_project(done)
    deployments.disable(ctx, account, project, {r.name for r in project.of_kind(ResourceKind.DEPLOYMENT_PIPELINE)})
    details = {**_details(done), "removed": removed, "notes": notes}
    ctx.audit(Action.TERMINATE_PROJECT, _resource(account, project.name, done), **details)
    ctx.emit(Event(event_type("catalog", "project", "terminated"), account.name, str(done.crn),
                   {**details, "terminated_by": ctx.identity.principal}))
    return ProjectResult(done, tuple(notes))


HANDLERS: dict[type, Any] = {
    c.CreateProject: create_project,
    c.ListProjects: list_projects,
    c.GetProject: get_project,
    c.UpdateProject: update_project,
    c.TerminateProject: terminate_project,
}
