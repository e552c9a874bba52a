"""Deployments: the pipelines of a shared-services account, their executions, and an execution's
stage timeline drawn as a picture with its integration-test results, approvals and decision."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from charter.client import models as m
from charter.domain import commands as c
from charter.domain.authz import Action
from charter.entrypoints.api import convert
from charter.entrypoints.console import views
from charter.entrypoints.console.routes import decisions
from charter.entrypoints.console.svg import Stage, timeline
from charter.entrypoints.console.web import Console, ConsoleRoute, problem
from charter.errors import CharterError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Name = Annotated[str, Path(max_length=63)]
Ident = Annotated[str, Path(max_length=64)]


@router.get("/accounts/{account}/deployments")
def pipelines(account: Name, console: ConsoleDep) -> Response:
    rows = []
    for pipeline in views.deployment_pipelines(console, account):
        latest = views.executions(console, account, pipeline.name, 1)
        rows.append((pipeline, latest[0] if latest else None))
    return console.render("deployments.html", account=account, rows=rows)


@router.get("/accounts/{account}/deployments/{pipeline}")
def pipeline(account: Name, pipeline: Name, console: ConsoleDep) -> Response:
    found = convert.deployment_pipeline(console(c.GetDeploymentPipeline(account, pipeline)))
    return console.render("deployment.html", account=account, pipeline=found,
                          executions=views.executions(console, account, pipeline))


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = (end - start).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def picture(execution: m.DeploymentExecutionOut) -> Any:
    """The five stages as a timeline: each with its state, its start and how long it took."""
    stages = []
    for s in execution.stages:
        lines = []
        if s.started_at:
            took = _duration(s.started_at, s.finished_at)
            lines.append(f"{s.started_at:%H:%M:%S}" + (f" · {took}" if took else " · running"))
        if s.reason:
            lines.append(s.reason)
        elif s.name == "approve-prod" and s.status == "AwaitingApproval":
            lines.append(f"{len(execution.approvals)} of {s.details.get('required', 1)} approvals")
        stages.append(Stage(s.name, s.status, tuple(lines), f"#stage-{s.name}"))
    return timeline(stages, f"Stages of execution {execution.id}", execution.current_stage)


def render_execution(console: Console, errors: dict[str, dict[str, str]] | None = None, status: int = 200, *,
                     account: str, pipeline: str, execution: str, **_: Any) -> Response:
    found = views.execution(console, account, pipeline, execution)
    spec = convert.deployment_pipeline(console(c.GetDeploymentPipeline(account, pipeline)))
    approve, reject, retry = console.can(
        *(c.Ability(str(a), account, pipeline, found.id)
          for a in (Action.APPROVE_DEPLOYMENT, Action.REJECT_DEPLOYMENT, Action.RETRY_DEPLOYMENT)))
    tests = next(s for s in found.stages if s.name == "integration-tests")
    live = found.status in ("Pending", "InProgress", "RollingBack")
    return console.render("execution.html", status=status, account=account, pipeline=spec, ex=found,
                          picture=picture(found), checks=tests.details.get("checks") or [],
                          figures=tests.details.get("figures") or {}, approve=approve, reject=reject,
                          may_retry=retry.allowed and found.status == "Failed",
                          errors=errors or {}, key=f"deployment-{found.id}", live=live,
                          package_url=_package_url(found.package))


decisions.PAGES["deployment"] = render_execution


def _package_url(crn: str) -> str | None:
    """``crn:charter:ACC:registry:model-package/G/V`` → its page."""
    parts = crn.split(":")
    if len(parts) != 5 or not parts[4].startswith("model-package/"):
        return None
    _, group, version = (parts[4].split("/") + ["", ""])[:3]
    return f"/accounts/{parts[2]}/registry/{group}/{version}" if group and version.isdigit() else None


@router.get("/accounts/{account}/deployments/{pipeline}/executions/{execution}")
def execution(account: Name, pipeline: Name, execution: Ident, console: ConsoleDep) -> Response:
    return render_execution(console, account=account, pipeline=pipeline, execution=execution)


@router.post("/accounts/{account}/deployments/{pipeline}/executions/{execution}/retry")
def retry(account: Name, pipeline: Name, execution: Ident, console: ConsoleDep) -> Response:
    """Run a failed execution again from the stage that failed (the stages that succeeded stand)."""
    where = {"account": account, "pipeline": pipeline, "execution": execution}
    try:
        current = views.execution(console, account, pipeline, execution)
        seen = console.field("seen")
        if seen and current.status != seen:
            raise decisions.stale(f"execution {execution[:12]} of {pipeline}", seen, current.status, None)
        console(c.RetryDeployment(account, pipeline, execution))
    except CharterError as error:
        return render_execution(console, {f"deployment-{execution}": problem(error)}, error.status, **where)
    return console.redirect(f"/accounts/{account}/deployments/{pipeline}/executions/{execution}",
                            f"Retrying execution {execution[:12]} of {pipeline} from {current.current_stage}")


@router.get("/accounts/{account}/deployments/{pipeline}/latest")
def latest(account: Name, pipeline: Name, console: ConsoleDep) -> Response:
    found = console(c.GetDeploymentExecution(account, pipeline, None))
    return console.redirect(f"/accounts/{account}/deployments/{pipeline}/executions/{found.id}")
