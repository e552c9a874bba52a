"""``charter projects`` and ``charter workspaces``: launch catalog products, update, terminate.

``--param KEY=VALUE`` values are sent as text; the server reads them as JSON where the product's
schema wants a number, a boolean, an array or an object (``--param threshold=0.8``,
``--param members='["lena","sam"]'``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from charter.client import models as m
from charter.entrypoints.cli.output import console, show, table, when
from charter.entrypoints.cli.registry import _account
from charter.entrypoints.cli.state import state_of as _state
from charter.errors import ValidationError

projects_app = typer.Typer(no_args_is_help=True, help="Projects launched from catalog products.")
workspaces_app = typer.Typer(no_args_is_help=True, help="Team workspaces launched from catalog products.")

AccountOpt = Annotated[str | None, typer.Option("--account", help="Account (default: the assumed role's).")]
ParamOpt = Annotated[list[str] | None, typer.Option("--param", help="KEY=VALUE, repeatable.")]
VersionOpt = Annotated[int | None, typer.Option("--version", min=1, help="Product version (default: latest).")]


def params(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"--param {item!r}: write KEY=VALUE", field="param")
        if key in out:
            raise ValidationError(f"--param {key} given twice", field=key)
        out[key] = value
    return out


def _render_project(p: m.ProjectOut, verb: str) -> None:
    console.print(f"{verb} [bold]{escape(p.crn)}[/] from {escape(p.product_crn)}  {p.status}", highlight=False)
    for r in p.resources:
        extra = ""
        if r.kind == "pipeline":
            extra = f"  ({r.details.get('definition')}, start on launch: {r.details.get('start_on_launch')})"
        elif r.kind == "event-rule" and not r.details.get("on_bus", True):
            extra = "  (pipeline target: kept on the project until the pipelines engine runs it)"
        console.print(f"  {r.kind:<20} {escape(r.crn)}{escape(extra)}", highlight=False)
    for note in p.notes:
        console.print(f"  [yellow]note[/] {escape(note)}", highlight=False)


@projects_app.command("create")
def create(ctx: typer.Context, name: str,
           product: Annotated[str, typer.Option("--product", help="A product shared with the account.")],
           version: VersionOpt = None,
           workspace: Annotated[str | None, typer.Option("--workspace", help="The workspace it belongs to.")] = None,
           param: ParamOpt = None, account: AccountOpt = None) -> None:
    """Launch a product as a project: its group, rules and pipelines are created with it."""
    with _state(ctx).client() as client:
        p = client.create_project(_account(ctx, account), name, product, parameters=params(param),
                                  version=version, workspace=workspace)
    show(_state(ctx).output, p, lambda: _render_project(p, "Launched"))


@projects_app.command("list")
def list_projects(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The projects of an account."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.projects(where))
    show(_state(ctx).output, items, lambda: table(
        f"Projects in {where}", ["name", "product", "version", "status", "launched by", "created"],
        [(p.name, p.product, p.version, p.status, p.launched_by, when(p.created_at)) for p in items]))


@projects_app.command("show")
def show_project(ctx: typer.Context, name: str, account: AccountOpt = None) -> None:
    """One project: its product version, parameters, resources and updates."""
    with _state(ctx).client() as client:
        p = client.project(_account(ctx, account), name)

    def render() -> None:
        _render_project(p, "Project")
        for key, value in sorted(p.parameters.items()):
            console.print(f"  param {escape(key)} = {escape(repr(value))}", highlight=False)
        for h in p.history:
            console.print(f"  {when(h.at)} {escape(h.by)}: version {h.from_version} -> {h.to_version}", highlight=False)

    show(_state(ctx).output, p, render)


@projects_app.command("update")
def update(ctx: typer.Context, name: str, version: VersionOpt = None, param: ParamOpt = None,
           account: AccountOpt = None) -> None:
    """Move a project to another version of its product (parameters re-checked)."""
    with _state(ctx).client() as client:
        p = client.update_project(_account(ctx, account), name, version=version, parameters=params(param))
    show(_state(ctx).output, p, lambda: _render_project(p, "Updated"))


@projects_app.command("terminate")
def terminate(ctx: typer.Context, name: str, account: AccountOpt = None) -> None:
    """Remove a project's rules and mark it Terminated; its model package groups stay."""
    with _state(ctx).client() as client:
        p = client.terminate_project(_account(ctx, account), name)
    show(_state(ctx).output, p, lambda: _render_project(p, "Terminated"))


def _render_workspace(w: m.WorkspaceOut, verb: str) -> None:
    console.print(f"{verb} [bold]{escape(w.crn)}[/] (team {escape(w.team)}) from {escape(w.product_crn)}  "
                  f"{w.status}", highlight=False)
    console.print(f"  cost centre {escape(w.cost_centre)}, business unit {escape(w.business_unit)}, "
                  f"environment {escape(w.environment)}", highlight=False)
    for member in w.members:
        state = "bound" if member.bound else "not bound (no such principal, or already bound)"
        console.print(f"  member {escape(member.principal)} as {member.role}: {state}", highlight=False)


@workspaces_app.command("create")
def create_workspace(ctx: typer.Context, name: str,
                     product: Annotated[str, typer.Option("--product", help="A workspace product, e.g. team-workspace.")],
                     version: VersionOpt = None, param: ParamOpt = None, account: AccountOpt = None) -> None:
    """Launch a workspace: members bound in the account, tags stored."""
    with _state(ctx).client() as client:
        w = client.create_workspace(_account(ctx, account), name, product, parameters=params(param), version=version)
    show(_state(ctx).output, w, lambda: _render_workspace(w, "Launched"))


@workspaces_app.command("list")
def list_workspaces(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The workspaces of an account."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.workspaces(where))
    show(_state(ctx).output, items, lambda: table(
        f"Workspaces in {where}", ["name", "team", "cost centre", "members", "status"],
        [(w.name, w.team, w.cost_centre, ", ".join(x.principal for x in w.members), w.status) for w in items]))


@workspaces_app.command("show")
def show_workspace(ctx: typer.Context, name: str, account: AccountOpt = None) -> None:
    """One workspace: members, tags, data access."""
    with _state(ctx).client() as client:
        w = client.workspace(_account(ctx, account), name)
    show(_state(ctx).output, w, lambda: _render_workspace(w, "Workspace"))


@workspaces_app.command("terminate")
def terminate_workspace(ctx: typer.Context, name: str, account: AccountOpt = None) -> None:
    """Remove the bindings a workspace made and mark it Terminated."""
    with _state(ctx).client() as client:
        w = client.terminate_workspace(_account(ctx, account), name)
    show(_state(ctx).output, w, lambda: _render_workspace(w, "Terminated"))
