"""Deployment pipelines and their executions: provisioning, starting, the manual approval, retries
and rollbacks. The stages themselves are run by ``services/deployment_runner.py`` in
``charter server``; a command here only records what was decided, in one transaction with its
audit record and event, and the runner takes it from there.

Executions are saved conditionally on the revision they were read at: an approval racing an
expiry sweep (or a retry racing a runner) is refused with Conflict instead of overwriting it.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from charter.domain import commands as c
from charter.domain.authz import Action, Resource
from charter.domain.crn import CRN
from charter.domain.deployments import (
    APPROVE_PROD,
    DEPLOY_PROD,
    ApprovalRule,
    Decision,
    DeploymentPipeline,
    Execution,
    ExecutionStatus,
    IntegrationTests,
    StageStatus,
    Trigger,
    new_execution,
)
from charter.domain.events import Event, event_type
from charter.domain.names import check_name
from charter.domain.org import Account
from charter.domain.projects import Project, ProvisionedResource, ResourceKind
from charter.domain.registry import ApprovalStatus, ModelPackage, ModelPackageGroup
from charter.errors import Conflict, NotFound, PermissionDenied, ValidationError
from charter.services.handlers import registry
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, UnitOfWork, paginate

POLICY_PRODUCTION_RELEASE: Final = "production-deploys-through-an-approved-execution"
EXECUTION_PREFIX: Final = "deployment:"
"""How the runner's identity names the execution it acts for (``Identity.credential_id``)."""

EXECUTION_CHANGED: Final = event_type("deployments", "execution", "state-changed")
APPROVAL_REQUESTED: Final = event_type("deployments", "approval", "requested")
PIPELINE_CHANGED: Final = event_type("deployments", "deployment-pipeline", "state-changed")


def new_execution_id(now: datetime) -> str:
    """32 hex digits that sort by creation time."""
    return f"{int(now.timestamp() * 1_000_000):016x}{secrets.token_hex(8)}"


def _attrs(account: Account) -> dict[str, Any]:
    return {"account_kind": str(account.kind), "stage": str(account.stage or "")}


def pipeline_resource(account: Account, name: str, pipeline: DeploymentPipeline | None = None) -> Resource:
    attrs = _attrs(account)
    if pipeline is not None:
        attrs |= {"run_as": pipeline.run_as, "project": pipeline.project, "prod_account": pipeline.prod_account}
    return Resource(CRN(account.name, "deployments", "deployment-pipeline", name), "DeploymentPipeline", attrs)


def card_status(uow: UnitOfWork, account: str, group: str) -> str | None:
    card = uow.cards.get(account, group)
    return str(card.status) if card is not None else None


def execution_resource(ctx: HandlerContext, account: Account, pipeline: DeploymentPipeline,
                       execution: Execution) -> Resource:
    """What the approval policies test: who approved the package centrally, and the card's status."""
    attrs = _attrs(account) | {
        "pipeline": pipeline.name, "status": str(execution.status), "prod_account": pipeline.prod_account,
        "central_approvers": [execution.central_approver] if execution.central_approver else [],
        "card_status": card_status(ctx.uow, account.name, pipeline.model_group) or "Missing"}
    return Resource(execution.crn, "DeploymentExecution", attrs)


def execution_event(execution: Execution, previous: ExecutionStatus | None, stage: str | None = None) -> Event:
    data: dict[str, Any] = {
        "execution": execution.id, "pipeline": execution.pipeline, "package": execution.package,
        "trigger": str(execution.trigger), "status": str(execution.status),
        "previous_status": str(previous) if previous else None, "reason": execution.reason}
    if stage is not None:
        state = execution.stage(stage)
        data |= {"stage": stage, "stage_status": str(state.status), "stage_reason": state.reason}
    return Event(EXECUTION_CHANGED, execution.account, str(execution.crn), data)


def approval_event(pipeline: DeploymentPipeline, execution: Execution) -> Event:
    return Event(APPROVAL_REQUESTED, execution.account, str(execution.crn), {
        "execution": execution.id, "pipeline": pipeline.name, "package": execution.package,
        "prod_account": pipeline.prod_account, "endpoint": pipeline.endpoint, "role": pipeline.approval.role,
        "required": pipeline.approval.required,
        "expires_at": execution.approval_expires_at.isoformat() if execution.approval_expires_at else None,
        "central_approver": execution.central_approver,
        "integration_tests": execution.stage("integration-tests").details.get("figures")})


def save(ctx: HandlerContext, execution: Execution) -> Execution:
    """Store the next revision of ``execution``; Conflict when someone moved it since it was read."""
    if not ctx.uow.deployments.save_execution(execution):
        raise Conflict(f"execution {execution.id} changed while this was decided (a runner, an expiry or "
                       "another decision moved it); read it again", execution=execution.id)
    return replace(execution, revision=execution.revision + 1)


# --- provisioning (called by the project handlers, inside the launch's transaction) ---------------

def _pipeline_from(resource: ProvisionedResource, account: str, project: Project, by: str,
                   now: datetime) -> DeploymentPipeline:
    d = resource.details
    return DeploymentPipeline(
        account=account, name=resource.name, project=project.name, model_group=d["model_group"],
        test_account=d["test_account"], prod_account=d["prod_account"], endpoint=d["endpoint"],
        run_as=d["run_as"], tests=IntegrationTests.from_document(d.get("integration_tests")),
        approval=ApprovalRule.from_document(d.get("approval")), created_by=by, created_at=now)


def provision(ctx: HandlerContext, account: Account, project: Project, *, replacing: bool = False) -> list[str]:
    """Create (or, on a project update, replace) the deployment pipelines a project declares."""
    created = []
    for resource in project.of_kind(ResourceKind.DEPLOYMENT_PIPELINE):
        existing = ctx.uow.deployments.get_pipeline(account.name, resource.name)
        if existing is not None and not (replacing and existing.project == project.name):
            raise Conflict(f"deployment pipeline {resource.name} already exists in {account.name} (project "
                           f"{existing.project}); name the project differently", pipeline=resource.name)
        pipeline = _pipeline_from(resource, account.name, project, ctx.identity.principal, ctx.clock.now())
        if existing is not None:
            pipeline = replace(pipeline, created_by=existing.created_by, created_at=existing.created_at)
        target = pipeline_resource(account, pipeline.name, pipeline)
        ctx.authorize(Action.CREATE_DEPLOYMENT_PIPELINE, target)
        ctx.uow.deployments.put_pipeline(pipeline)
        ctx.audit(Action.CREATE_DEPLOYMENT_PIPELINE, target, **pipeline.spec(), project_crn=str(project.crn))
        _admit_stage_accounts(ctx, account, pipeline)
        ctx.emit(Event(PIPELINE_CHANGED, account.name, str(pipeline.crn), {
            "pipeline": pipeline.name, "enabled": True, "actor": ctx.identity.principal, **pipeline.spec()}))
        created.append(str(pipeline.crn))
    return created


def _admit_stage_accounts(ctx: HandlerContext, account: Account, pipeline: DeploymentPipeline) -> None:
    """The endpoints of the test and prod accounts read the central group's packages under its
    resource policy (the article's registry policy for the deployment accounts): launching the
    deployment adds both accounts to the group's readers, creating the group if no package has
    been promoted into it yet (promotion then fills the group it finds)."""
    wanted = (pipeline.test_account, pipeline.prod_account)
    group = ctx.uow.registry.get_group(account.name, pipeline.model_group)
    if group is None:
        group = ModelPackageGroup(account.name, pipeline.model_group,
                                  f"Deployed by deployment pipeline {pipeline.name}", readers=wanted)
        resource = registry.group_resource(ctx, account, group)
        ctx.authorize(Action.CREATE_GROUP, resource)
        registry.add_group(ctx, group, resource, audit={"deployment_pipeline": str(pipeline.crn)},
                           data={"deployment_pipeline": pipeline.name})
        return
    missing = tuple(a for a in wanted if a not in group.readers)
    if not missing:
        return
    readers = (*group.readers, *missing)
    resource = registry.group_resource(ctx, account, group)
    ctx.authorize(Action.PUT_GROUP_POLICY, resource)
    ctx.uow.registry.set_readers(account.name, group.name, readers)
    ctx.audit(Action.PUT_GROUP_POLICY, resource, readers=list(readers), added=list(missing),
              deployment_pipeline=str(pipeline.crn))
    ctx.emit(Event(event_type("registry", "model-package-group", "policy-changed"), account.name, str(group.crn),
                   {"group": group.name, "readers": list(readers), "added": list(missing),
                    "actor": ctx.identity.principal, "deployment_pipeline": pipeline.name}))


def disable(ctx: HandlerContext, account: Account, project: Project, names: set[str]) -> None:
    """A terminated project's pipelines (or those an update dropped) start no more executions."""
    for name in sorted(names):
        pipeline = ctx.uow.deployments.get_pipeline(account.name, name)
        if pipeline is None or pipeline.project != project.name or not pipeline.enabled:
            continue
        ctx.uow.deployments.put_pipeline(replace(pipeline, enabled=False))
        ctx.audit(Action.CREATE_DEPLOYMENT_PIPELINE, pipeline_resource(account, name, pipeline),
                  project=str(project.crn), enabled=False)
        ctx.emit(Event(PIPELINE_CHANGED, account.name, str(pipeline.crn), {
            "pipeline": name, "enabled": False, "actor": ctx.identity.principal}))


def require_production_release(ctx: HandlerContext, account: Account, endpoint: str, packages: list[str]) -> None:
    """A new configuration of a production endpoint comes only from the deployment execution that
    releases it: acting as its pipeline's principal, at its deploy-prod stage, after its production
    stage got the distinct approvals the pipeline requires, for that package and that endpoint. So
    nobody, whatever their role in the production account, puts a package into production around
    the governance officers and the model card (a rollback restores what was released before)."""
    credential = ctx.identity.credential_id
    execution = (ctx.uow.deployments.get_execution(credential.removeprefix(EXECUTION_PREFIX))
                 if credential.startswith(EXECUTION_PREFIX) else None)
    pipeline = ctx.uow.deployments.get_pipeline(execution.account, execution.pipeline) if execution else None
    problem = None
    if execution is None or pipeline is None:
        problem = "it is not a deployment execution's release"
    elif (ctx.identity.principal, account.name, endpoint) != (pipeline.run_as, pipeline.prod_account, pipeline.endpoint):
        problem = f"execution {execution.id} releases to {pipeline.endpoint} in {pipeline.prod_account}"
    elif execution.stage(DEPLOY_PROD).status is not StageStatus.IN_PROGRESS \
            or execution.stage(APPROVE_PROD).status is not StageStatus.SUCCEEDED:
        problem = f"execution {execution.id} is not at its production release"
    elif packages != [execution.package]:
        problem = f"execution {execution.id} releases {execution.package}, not {', '.join(packages)}"
    elif len({a.principal for a in execution.approvals if a.decision is Decision.APPROVED}) < pipeline.approval.required:
        problem = f"execution {execution.id} has fewer than {pipeline.approval.required} production approvals"
    if problem is not None:
        raise PermissionDenied(f"{account.name} is a production account: a new configuration of {endpoint} comes "
                               f"only from a deployment pipeline's approved execution, and {problem}",
                               policy=POLICY_PRODUCTION_RELEASE, endpoint=endpoint, account=account.name)


# --- queries ----------------------------------------------------------------------------------------

def _require_pipeline(ctx: HandlerContext, account: Account, name: str) -> DeploymentPipeline:
    pipeline = ctx.uow.deployments.get_pipeline(account.name, check_name(name, "deployment pipeline"))
    if pipeline is None:
        ctx.authorize(Action.LIST_DEPLOYMENT_PIPELINES, pipeline_resource(account, "*"))
        raise NotFound(f"no deployment pipeline {name!r} in {account.name}", pipeline=name)
    return pipeline


def _require_execution(ctx: HandlerContext, account: Account, pipeline: DeploymentPipeline,
                       execution_id: str | None) -> Execution:
    if execution_id is None:
        latest = ctx.uow.deployments.list_executions(account.name, pipeline.name, None, 1)
        if not latest:
            ctx.authorize(Action.LIST_DEPLOYMENT_EXECUTIONS, pipeline_resource(account, pipeline.name, pipeline))
            raise NotFound(f"deployment pipeline {pipeline.name} has no executions yet: they start when a "
                           f"package of {pipeline.model_group} is approved centrally", pipeline=pipeline.name)
        return latest[0]
    found = ctx.uow.deployments.get_execution(execution_id) if 0 < len(execution_id) <= 64 else None
    if found is None or (found.account, found.pipeline) != (account.name, pipeline.name):
        ctx.authorize(Action.LIST_DEPLOYMENT_EXECUTIONS, pipeline_resource(account, pipeline.name, pipeline))
        raise NotFound(f"no execution {execution_id!r} of {pipeline.name}", execution=execution_id)
    return found


def list_pipelines(cmd: c.ListDeploymentPipelines, ctx: HandlerContext) -> Page[DeploymentPipeline]:
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_DEPLOYMENT_PIPELINES, pipeline_resource(account, "*"))
    items = ctx.uow.deployments.list_pipelines(account.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda p: p.name)


def get_pipeline(cmd: c.GetDeploymentPipeline, ctx: HandlerContext) -> DeploymentPipeline:
    account = ctx.account(cmd.account)
    pipeline = _require_pipeline(ctx, account, cmd.name)
    ctx.authorize(Action.READ_DEPLOYMENT_PIPELINE, pipeline_resource(account, pipeline.name, pipeline))
    return pipeline


def list_executions(cmd: c.ListDeploymentExecutions, ctx: HandlerContext) -> Page[Execution]:
    account = ctx.account(cmd.account)
    pipeline = _require_pipeline(ctx, account, cmd.pipeline)
    ctx.authorize(Action.LIST_DEPLOYMENT_EXECUTIONS, pipeline_resource(account, pipeline.name, pipeline))
    items = ctx.uow.deployments.list_executions(account.name, pipeline.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda e: e.id)


def get_execution(cmd: c.GetDeploymentExecution, ctx: HandlerContext) -> Execution:
    account = ctx.account(cmd.account)
    pipeline = _require_pipeline(ctx, account, cmd.pipeline)
    execution = _require_execution(ctx, account, pipeline, cmd.execution)
    ctx.authorize(Action.READ_DEPLOYMENT_EXECUTION, execution_resource(ctx, account, pipeline, execution))
    return execution


# --- starting ----------------------------------------------------------------------------------------

def _package_to_deploy(ctx: HandlerContext, pipeline: DeploymentPipeline, subject: CRN,
                       status: str) -> tuple[Trigger, ModelPackage | None, str]:
    """The package an event asks for: the approved one, or after a rejection the latest approved
    one of the group (read as the pipeline's principal, under the group's resource policy)."""
    central = ctx.account(pipeline.account)
    group = registry.require_group(ctx, central, pipeline.model_group)
    if status == str(ApprovalStatus.APPROVED):
        try:
            version = int(subject.version or "")
        except ValueError:
            raise ValidationError(f"{subject} names no package version", field="subject") from None
        package = ctx.uow.registry.get_package(central.name, group.name, version)
        if package is None:
            raise NotFound(f"no model package {subject}", package=str(subject))
        ctx.authorize(Action.READ_PACKAGE, registry.package_resource(ctx, central, group, package))
        if package.approval is None:
            raise Conflict(f"{subject} is {package.status} now, not approved", package=str(subject))
        return Trigger.APPROVED, package, ""
    if status == str(ApprovalStatus.REJECTED):
        ctx.authorize(Action.LIST_PACKAGES, registry.group_resource(ctx, central, group))
        package = ctx.uow.registry.latest_package(central.name, group.name, ApprovalStatus.APPROVED)
        if package is None or package.approval is None:
            return Trigger.REJECTED, None, (f"{subject} was rejected and no approved package of "
                                            f"{group.name} remains to deploy again")
        ctx.authorize(Action.READ_PACKAGE, registry.package_resource(ctx, central, group, package))
        return Trigger.REJECTED, package, ""
    raise ValidationError(f"a deployment starts on Approved or Rejected, not {status!r}", field="status")


def start_execution(cmd: c.StartDeploymentExecution, ctx: HandlerContext) -> Execution:
    account = ctx.account(cmd.account)
    pipeline = _require_pipeline(ctx, account, cmd.pipeline)
    target = pipeline_resource(account, pipeline.name, pipeline)
    ctx.authorize(Action.START_DEPLOYMENT, target)
    done = ctx.uow.deployments.find_by_event(account.name, pipeline.name, cmd.event_id)
    if done is not None:  # a repeated delivery of the same event
        ctx.audit(Action.START_DEPLOYMENT, target, event=cmd.event_id, execution=done.id, already_started=True)
        return done
    if not pipeline.enabled:
        raise Conflict(f"deployment pipeline {pipeline.name} is disabled (its project was terminated)",
                       pipeline=pipeline.name)
    subject = CRN.parse(cmd.subject)
    if (subject.account, subject.service, subject.type, subject.name) != (
            account.name, "registry", "model-package", pipeline.model_group):
        raise ValidationError(f"{cmd.subject} is not a package of {pipeline.model_group} in {account.name}",
                              field="subject")
    trigger, package, problem = _package_to_deploy(ctx, pipeline, subject, cmd.status)
    now = ctx.clock.now()
    approval = package.approval if package is not None else None
    execution = new_execution(new_execution_id(now), pipeline, trigger, cmd.event_id,
                              str(package.crn) if package else cmd.subject, approval.actor if approval else None, now)
    if package is None:
        execution = execution.fail("deploy-test", now, problem)
    # A newer decision supersedes what was still under way (as CodePipeline does).
    for earlier in ctx.uow.deployments.unfinished(account.name, pipeline.name):
        moved = save(ctx, earlier.supersede(f"superseded by execution {execution.id} ({cmd.subject} {cmd.status})",
                                            now))
        ctx.audit("deployments:ExecutionStateChanged", Resource(moved.crn, "DeploymentExecution", _attrs(account)),
                  status=str(moved.status), previous_status=str(earlier.status), reason=moved.reason)
        ctx.emit(execution_event(moved, earlier.status))
    ctx.uow.deployments.add_execution(execution)
    ctx.audit(Action.START_DEPLOYMENT, target, event=cmd.event_id, execution=execution.id, trigger=str(trigger),
              package=execution.package, subject=cmd.subject, central_approver=execution.central_approver,
              status=str(execution.status), reason=execution.reason)
    ctx.emit(execution_event(execution, None))
    return execution


# --- people's decisions ------------------------------------------------------------------------------

def _acting(ctx: HandlerContext, cmd_account: str, name: str, execution_id: str | None,
            action: Action) -> tuple[Account, DeploymentPipeline, Execution, Resource]:
    account = ctx.account(cmd_account)
    pipeline = _require_pipeline(ctx, account, name)
    execution = _require_execution(ctx, account, pipeline, execution_id)
    resource = execution_resource(ctx, account, pipeline, execution)
    ctx.authorize(action, resource)
    return account, pipeline, execution, resource


def _record(ctx: HandlerContext, action: Action, resource: Resource, before: Execution, after: Execution,
            **details: Any) -> None:
    ctx.audit(action, resource, execution=after.id, status=str(after.status), previous_status=str(before.status),
              package=after.package, **details)
    ctx.emit(execution_event(after, before.status, APPROVE_PROD if action in (
        Action.APPROVE_DEPLOYMENT, Action.REJECT_DEPLOYMENT) else None))


def decide(cmd: c.DecideDeployment, ctx: HandlerContext) -> Execution:
    try:
        decision = Decision(cmd.decision)
    except ValueError:
        raise ValidationError(f"decide Approved or Rejected, not {cmd.decision!r}", field="decision") from None
    action = Action.APPROVE_DEPLOYMENT if decision is Decision.APPROVED else Action.REJECT_DEPLOYMENT
    account, pipeline, execution, resource = _acting(ctx, cmd.account, cmd.pipeline, cmd.execution, action)
    now, who = ctx.clock.now(), ctx.identity.principal
    if decision is Decision.APPROVED:
        # The policies decided above; the domain holds the same rules whatever the org's policies.
        moved = execution.approve(who, cmd.comment, now, pipeline.approval, via=ctx.identity.via,
                                  card_status=card_status(ctx.uow, account.name, pipeline.model_group))
    else:
        moved = execution.reject(who, cmd.comment, now, via=ctx.identity.via)
    moved = save(ctx, moved)
    approved = sum(1 for a in moved.approvals if a.decision is Decision.APPROVED)
    _record(ctx, action, resource, execution, moved, comment=cmd.comment.strip(), approvals=approved,
            required=pipeline.approval.required, central_approver=execution.central_approver)
    return moved


def retry(cmd: c.RetryDeployment, ctx: HandlerContext) -> Execution:
    _, _, execution, resource = _acting(ctx, cmd.account, cmd.pipeline, cmd.execution, Action.RETRY_DEPLOYMENT)
    failed = execution.current.name if execution.current else None
    moved = save(ctx, execution.retry(ctx.clock.now()))
    _record(ctx, Action.RETRY_DEPLOYMENT, resource, execution, moved, from_stage=failed,
            previous_reason=execution.reason)
    return moved


def rollback(cmd: c.RollbackDeployment, ctx: HandlerContext) -> Execution:
    _, _, execution, resource = _acting(ctx, cmd.account, cmd.pipeline, cmd.execution, Action.ROLLBACK_DEPLOYMENT)
    moved = save(ctx, execution.request_rollback(ctx.identity.principal, cmd.reason, ctx.clock.now()))
    _record(ctx, Action.ROLLBACK_DEPLOYMENT, resource, execution, moved, reason=cmd.reason.strip())
    return moved


HANDLERS: dict[type, Any] = {
    c.ListDeploymentPipelines: list_pipelines,
    c.GetDeploymentPipeline: get_pipeline,
    c.ListDeploymentExecutions: list_executions,
    c.GetDeploymentExecution: get_execution,
    c.StartDeploymentExecution: start_execution,
    c.DecideDeployment: decide,
    c.RetryDeployment: retry,
    c.RollbackDeployment: rollback,
}
