"""``charter registry``: groups, packages, registration with uploads, decisions and lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.tree import Tree

from charter.client import models as m
from charter.entrypoints.cli.output import console, show, table, when
from charter.entrypoints.cli.state import state_of as _state
from charter.errors import ValidationError

app = typer.Typer(no_args_is_help=True, help="Model package groups, packages and approvals.")

AccountOpt = Annotated[str | None, typer.Option("--account", help="Account (default: the assumed role's).")]


def _account(ctx: typer.Context, account: str | None) -> str:
    if account:
        return account
    _, profile = _state(ctx).store().get(_state(ctx).profile)
    if profile.session is not None:
        return str(profile.session.account)
    raise ValidationError("give --account (or assume a role in the account first)")


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"{what} {item!r}: write KEY=VALUE", field=what)
        out[key] = value
    return out


def _ref(text: str) -> tuple[str, int]:
    group, sep, version = text.rpartition("/")
    if not sep or not version.isdigit():
        raise ValidationError(f"{text!r}: write GROUP/VERSION, e.g. churn/2", value=text)
    return group, int(version)


def _json_file(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValidationError(f"cannot read {path}: {error}", file=str(path)) from None


@app.command("groups")
def groups(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The model package groups of an account."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.groups(name))
    show(_state(ctx).output, items, lambda: table(
        f"Model package groups in {name}", ["name", "description", "readers", "crn"],
        [(g.name, g.description, ", ".join(g.readers), g.crn) for g in items]))


@app.command("create-group")
def create_group(ctx: typer.Context, name: str, account: AccountOpt = None,
                 description: Annotated[str, typer.Option(help="What the models are for.")] = "",
                 tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
                 reader: Annotated[list[str] | None, typer.Option(
                     help="An account or ou:<unit> that may read the group, repeatable.")] = None) -> None:
    """Create a model package group."""
    with _state(ctx).client() as client:
        group = client.create_group(_account(ctx, account), name, description=description,
                                    tags=_pairs(tag, "tag"), readers=reader or [])
    show(_state(ctx).output, group, lambda: console.print(f"Created {group.crn}", highlight=False))


@app.command("packages")
def packages(ctx: typer.Context, group: str, account: AccountOpt = None,
             status: Annotated[str | None, typer.Option(help="PendingManualApproval, Approved or Rejected.")] = None) -> None:
    """The versions of a group, with their status and metrics."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.packages(name, group, status=status))
    show(_state(ctx).output, items, lambda: table(
        f"{group} in {name}", ["version", "status", "metrics", "registered by", "created"],
        [(p.version, p.status, ", ".join(f"{k}={v:.4g}" for k, v in p.metrics.items()),
          p.lineage.registered_by, when(p.created_at)) for p in items]))


@app.command("show")
def show_package(ctx: typer.Context,
                 ref: Annotated[str, typer.Argument(help="GROUP/VERSION, or GROUP/latest for the latest approved")],
                 account: AccountOpt = None) -> None:
    """One package: artifacts, metrics, signature and its decision history."""
    with _state(ctx).client() as client:
        if ref.endswith("/latest"):
            p = client.latest_package(_account(ctx, account), ref.removesuffix("/latest"))
        else:
            group, version = _ref(ref)
            p = client.package(_account(ctx, account), group, version)

    def render() -> None:
        console.print(f"[bold]{escape(p.crn)}[/]  {p.status}  ({p.format})", highlight=False)
        if p.description:
            console.print(p.description, markup=False)
        table("Artifacts", ["path", "size", "sha256"], [(a.path, a.size, a.sha256) for a in p.artifacts])
        table("Metrics", ["name", "value"], [(k, f"{v:.6g}") for k, v in p.metrics.items()])
        table("History", ["time", "status", "actor", "comment"],
              [(when(h.time), h.status, h.actor, h.comment) for h in p.history])

    show(_state(ctx).output, p, render)


@app.command("register")
def register(
    ctx: typer.Context,
    group: str,
    artifact: Annotated[list[str], typer.Option(help="PATH_IN_PACKAGE=LOCAL_FILE, repeatable.")],
    format: Annotated[str, typer.Option("--format", help="skops or onnx.")],
    account: AccountOpt = None,
    metric: Annotated[list[str] | None, typer.Option(help="NAME=NUMBER, repeatable.")] = None,
    signature: Annotated[Path | None, typer.Option(help="JSON file: {inputs: [{name, dtype}], outputs: [...]}.")] = None,
    sample: Annotated[Path | None, typer.Option(help="JSON file with a sample request payload.")] = None,
    description: Annotated[str, typer.Option(help="What changed in this version.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    run: Annotated[str | None, typer.Option(help="The pipeline run that produced it.")] = None,
    dataset: Annotated[list[str] | None, typer.Option(help="Dataset version CRN, repeatable.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Training parameter KEY=VALUE, repeatable.")] = None,
) -> None:
    """Upload the artifacts (with progress) and register a new package version."""
    name = _account(ctx, account)
    files = _pairs(artifact, "artifact")
    try:
        metrics = {k: float(v) for k, v in _pairs(metric, "metric").items()}
    except ValueError:
        raise ValidationError("metrics are NAME=NUMBER", field="metric") from None
    refs = []
    with _state(ctx).client() as client:
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=console, transient=True) as progress:
            for path, local in files.items():
                file = Path(local)
                if not file.is_file():
                    raise ValidationError(f"no such file: {local}", file=local)
                with progress.open(file, "rb", description=f"uploading {path}") as reader:
                    model = format if path.endswith(f".{format}") else None
                    blob = client.upload_artifact(name, reader, model_format=model)
                refs.append(m.ArtifactIn(path=path, sha256=blob.sha256))
        body = m.PackageCreate(
            format=format, artifacts=refs,
            signature=m.SignatureIn.model_validate(_json_file(signature)) if signature else None,
            metrics=metrics, sample_payload=_json_file(sample), description=description,
            tags=_pairs(tag, "tag"),
            lineage=m.LineageIn(run=run, datasets=dataset or [], parameters=_pairs(param, "param")))
        package = client.register_package(name, group, body)
    show(_state(ctx).output, package, lambda: console.print(
        f"Registered {package.crn} ({package.status})", highlight=False))


def _decision(ctx: typer.Context, ref: str, account: str | None, comment: str, approve: bool) -> None:
    group, version = _ref(ref)
    with _state(ctx).client() as client:
        name = _account(ctx, account)
        p = client.approve(name, group, version, comment) if approve else client.reject(name, group, version, comment)
    show(_state(ctx).output, p, lambda: console.print(f"{p.crn} is now {p.status}.", highlight=False))


Comment = Annotated[str, typer.Option(help="Why; kept in the package's history and the audit trail.")]


@app.command("approve")
def approve(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="GROUP/VERSION")],
            account: AccountOpt = None, comment: Comment = "") -> None:
    """Approve a package (not one you registered or whose run you started)."""
    _decision(ctx, ref, account, comment, approve=True)


@app.command("reject")
def reject(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="GROUP/VERSION")],
           account: AccountOpt = None, comment: Comment = "") -> None:
    """Reject a package."""
    _decision(ctx, ref, account, comment, approve=False)


@app.command("lineage")
def lineage(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="GROUP/VERSION")],
            account: AccountOpt = None) -> None:
    """Where a package came from: datasets, run, parameters, people, origin."""
    group, version = _ref(ref)
    with _state(ctx).client() as client:
        p = client.package(_account(ctx, account), group, version)

    def render() -> None:
        tree = Tree(f"[bold]{escape(p.crn)}[/] ({p.status})")
        if p.origin:
            tree.add(f"promoted from {escape(p.origin)}")
        who = tree.add(f"registered by {escape(p.lineage.registered_by)}")
        if p.lineage.run:
            who.add(f"run {escape(p.lineage.run)}"
                    + (f" started by {escape(p.lineage.run_started_by)}" if p.lineage.run_started_by else ""))
        for dataset in p.lineage.datasets:
            tree.add(f"dataset {escape(dataset)}")
        if p.lineage.product_version:
            tree.add(f"product {escape(p.lineage.product_version)}")
        for key, value in p.lineage.parameters.items():
            tree.add(f"param {escape(key)}={escape(value)}")
        console.print(tree)

    show(_state(ctx).output, p.lineage, render)
