"""``charter deployments``: deployment pipelines and their executions, drawn as a stage timeline
with the integration test results and the approvals; approve, reject, retry, roll back."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from charter.client import models as m
from charter.entrypoints.cli.output import console, show, table, when
from charter.entrypoints.cli.registry import _account
from charter.entrypoints.cli.state import state_of as _state
from charter.errors import NotFound

app = typer.Typer(no_args_is_help=True, help="Deployment pipelines: test, approve and release models.")

AccountOpt = Annotated[str | None, typer.Option("--account", help="Account (default: the assumed role's).")]
ExecutionOpt = Annotated[str | None, typer.Option("--execution", help="The execution (default: the latest).")]
COLOURS = {"Pending": "grey50", "InProgress": "yellow", "AwaitingApproval": "cyan", "Succeeded": "green",
           "Failed": "red", "Skipped": "grey50", "Superseded": "magenta", "RollingBack": "yellow",
           "RolledBack": "magenta"}
MARKS = {"Pending": "○", "InProgress": "◐", "AwaitingApproval": "⏸", "Succeeded": "●", "Failed": "✗",
         "Skipped": "–", "Superseded": "■", "RollingBack": "↺", "RolledBack": "↺"}


def _status(status: str) -> str:
    return f"[{COLOURS.get(status, 'white')}]{MARKS.get(status, '?')} {status}[/]"


def _took(stage: m.DeploymentStageOut) -> str:
    if stage.started_at is None:
        return ""
    if stage.finished_at is None:
        return f"since {when(stage.started_at)}"
    return f"{when(stage.started_at)}, {(stage.finished_at - stage.started_at).total_seconds():.1f} s"


def _tests(node: Tree, details: dict[str, Any]) -> None:
    figures = details.get("figures") or {}
    if figures:
        latency = figures.get("latency_ms") or {}
        node.add(f"[dim]{figures.get('succeeded')}/{figures.get('requests')} requests, p50 {latency.get('p50')} ms, "
                 f"p95 {latency.get('p95')} ms, accuracy {figures.get('accuracy')} on "
                 f"{figures.get('holdout_rows')} held-out rows[/]")
    for check in details.get("checks") or []:
        mark = "[green]✓[/]" if check.get("passed") else "[red]✗[/]"
        node.add(f"{mark} {escape(str(check.get('name')))}: [dim]{escape(str(check.get('detail')))}[/]")


def draw(e: m.DeploymentExecutionOut) -> Tree:
    """The stage timeline: each stage's state, when and how long, and what it recorded."""
    tree = Tree(f"[bold]{escape(e.pipeline)}[/] execution {e.id}  {_status(e.status)}  [dim]({e.trigger}: "
                f"{escape(e.package)})[/]" + (f"\n[dim]{escape(e.reason[:300])}[/]" if e.reason else ""))
    for stage in e.stages:
        node = tree.add(f"{_status(stage.status)}  [bold]{stage.name}[/]  [dim]{_took(stage)}[/]")
        d = stage.details
        if "revision" in d:
            node.add(f"[dim]revision {d['revision']} of {escape(str(d.get('endpoint')))} in "
                     f"{escape(str(d.get('account')))}" + (f", serving {escape(str(d['serving_package']))}"
                                                            if d.get("serving_package") else "") + "[/]")
        if stage.name == "integration-tests":
            _tests(node, d)
        if stage.name == "approve-prod":
            if stage.status == "AwaitingApproval" and e.approval_expires_at:
                node.add(f"[cyan]waiting for {d.get('required', 1)} {escape(str(d.get('role')))} approval(s) until "
                         f"{when(e.approval_expires_at)}; not {escape(e.central_approver or '-')}, who approved "
                         "the package centrally[/]")
            for a in e.approvals:
                node.add(f"{'[green]✓' if a.decision == 'Approved' else '[red]✗'} {escape(a.principal)}[/] "
                         f"[dim]{when(a.at)}[/] {escape(a.comment)}")
        if stage.name == "smoke-prod" and d.get("rollback"):
            node.add(f"[magenta]{escape(str(d['rollback'].get('summary')))}[/]")
        if stage.reason and stage.status == "Failed":
            node.add(f"[red]{escape(stage.reason[:400])}[/]")
    for rollback in e.rollbacks:
        tree.add(f"[magenta]↺ rollback by {escape(str(rollback.get('requested_by')))}[/]: "
                 f"{escape(str(rollback.get('reason')))} [dim]{escape(str(rollback.get('summary', 'in progress')))}[/]")
    return tree


def _pipeline_table(p: m.DeploymentPipelineOut) -> Table:
    t = Table.grid(padding=(0, 2))
    for key, value in (("pipeline", p.crn), ("group", p.model_group), ("test", p.test_account),
                       ("production", p.prod_account), ("endpoint", p.endpoint), ("acts as", p.run_as),
                       ("approval", f"{p.approval.get('required')} of {p.approval.get('role')}, expires after "
                                    f"{p.approval.get('expires_seconds')} s")):
        t.add_row(f"[bold]{key}[/]", escape(str(value)))
    return t


@app.command("list")
def list_(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The account's deployment pipelines."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.deployment_pipelines(where))
    show(_state(ctx).output, items, lambda: table(
        f"Deployment pipelines in {where}", ["name", "group", "test", "prod", "endpoint", "enabled"],
        [(p.name, p.model_group, p.test_account, p.prod_account, p.endpoint, "yes" if p.enabled else "no")
         for p in items]))


@app.command("show")
def show_(ctx: typer.Context, name: str, execution: ExecutionOpt = None,
          all_: Annotated[bool, typer.Option("--all", help="List every execution instead.")] = False,
          account: AccountOpt = None) -> None:
    """A deployment pipeline and its latest (or the given) execution as a stage timeline."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        pipeline = client.deployment_pipeline(where, name)
        if all_:
            items = list(client.deployment_executions(where, name))
            show(_state(ctx).output, items, lambda: table(
                f"Executions of {name}", ["id", "status", "at", "trigger", "package", "updated"],
                [(e.id, e.status, e.current_stage or "-", e.trigger, e.package.rsplit(":", 1)[-1], when(e.updated_at))
                 for e in items]))
            return
        try:
            current: m.DeploymentExecutionOut | None = client.deployment_execution(where, name, execution)
        except NotFound:
            if execution is not None:
                raise
            current = None

    def render() -> None:
        console.print(_pipeline_table(pipeline))
        console.print(draw(current) if current else "[dim]no executions yet: one starts when a package of "
                      f"{escape(pipeline.model_group)} is approved centrally[/]")

    show(_state(ctx).output, {"pipeline": pipeline.model_dump(mode="json"),
                              "execution": current.model_dump(mode="json") if current else None}, render)


def _done(ctx: typer.Context, e: m.DeploymentExecutionOut, what: str) -> None:
    show(_state(ctx).output, e, lambda: console.print(f"{what}: execution {e.id} {_status(e.status)}"
                                                       + (f" [dim]{escape(e.reason[:200])}[/]" if e.reason else "")))


@app.command("approve")
def approve(ctx: typer.Context, name: str,
            comment: Annotated[str, typer.Option("--comment", help="Required: what was checked.")],
            execution: ExecutionOpt = None, account: AccountOpt = None) -> None:
    """Approve the production stage (a governance officer, not the package's central approver)."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        _done(ctx, client.approve_deployment(where, name, comment, execution), "Approved")


@app.command("reject")
def reject(ctx: typer.Context, name: str,
           comment: Annotated[str, typer.Option("--comment", help="Required: why.")],
           execution: ExecutionOpt = None, account: AccountOpt = None) -> None:
    """Reject the production stage: the execution stops there."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        _done(ctx, client.reject_deployment(where, name, comment, execution), "Rejected")


@app.command("retry")
def retry(ctx: typer.Context, name: str, execution: ExecutionOpt = None, account: AccountOpt = None) -> None:
    """Run a failed execution again from the stage that failed."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        _done(ctx, client.retry_deployment(where, name, execution), "Retrying")


@app.command("rollback")
def rollback(ctx: typer.Context, name: str,
             reason: Annotated[str, typer.Option("--reason", help="Required: why production goes back.")],
             execution: ExecutionOpt = None, account: AccountOpt = None) -> None:
    """Return production to its configuration before this execution's release."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        _done(ctx, client.rollback_deployment(where, name, reason, execution), "Rolling back")
