"""``charter data``: governed datasets, subscriptions and their decisions, reads by grant, lineage.

``--account`` is the account a command acts in: for the catalogue and the owner's commands
(register, approve …) the data-governance account, for ``subscribe`` and ``read`` the account
that will use the data. Both default as the registry's do — the assumed role's account — and the
dataset's own account (``--dataset-account``) defaults to the organization's data-governance
account when there is exactly one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from charter.client import models as m
from charter.client.client import Client
from charter.entrypoints.cli.output import console, show, table, when
from charter.entrypoints.cli.state import state_of as _state
from charter.errors import IntegrityError, ValidationError

app = typer.Typer(no_args_is_help=True, help="Governed datasets: register, subscribe, approve, read.")

DATA_GOVERNANCE = "data-governance"
AccountOpt = Annotated[str | None, typer.Option("--account", help="Account (default: the assumed role's).")]
HomeOpt = Annotated[str | None, typer.Option(
    "--account", help="The data-governance account holding the datasets (default: the assumed role's "
                      "account when it is one, else the organization's data-governance account).")]
DatasetAccountOpt = Annotated[str | None, typer.Option(
    "--dataset-account", help="The data-governance account holding the dataset (default: the "
                              "organization's data-governance account).")]


def _session_account(ctx: typer.Context) -> str | None:
    state = _state(ctx)
    if state.server and state.token:
        return None
    _, profile = state.store().get(state.profile)
    return str(profile.session.account) if profile.session is not None else None


def _acting(ctx: typer.Context, account: str | None) -> str:
    """The account a consumer acts for, as the registry CLI defaults it."""
    found = account or _session_account(ctx)
    if found is None:
        raise ValidationError("give --account (or assume a role in the account first)")
    return found


def _governance(client: Client, ctx: typer.Context, explicit: str | None, *, session_first: bool) -> str:
    """The data-governance account holding the datasets."""
    if explicit:
        return explicit
    accounts = list(client.accounts())
    if session_first:
        session = _session_account(ctx)
        if session and any(a.name == session and a.kind == DATA_GOVERNANCE for a in accounts):
            return session
    homes = [a.name for a in accounts if a.kind == DATA_GOVERNANCE]
    if len(homes) != 1:
        raise ValidationError(f"the organization has {len(homes)} data-governance accounts "
                              f"({', '.join(homes) or 'none'}): name one with --account/--dataset-account")
    return homes[0]


def _ref(text: str) -> tuple[str, int | None]:
    name, sep, version = text.partition("@")
    if not sep or version == "latest":
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise ValidationError(f"{text!r}: write NAME or NAME@VERSION, e.g. bank-marketing@2", value=text)
    return name, int(version)


def _subscription_rows(items: list[m.SubscriptionOut]) -> list[tuple[object, ...]]:
    return [(s.id, s.dataset, s.subscriber + (f"/{s.project}" if s.project else ""), s.status,
             s.requested_by, s.reason, when(s.expires_at) or ("never" if s.status == "Approved" else ""),
             "yes" if s.grant and s.grant.active else "no") for s in items]


SUBSCRIPTION_COLUMNS = ["id", "dataset", "subscriber", "status", "requested by", "reason", "expires", "active"]


@app.command("register")
def register(
    ctx: typer.Context, name: str,
    file: Annotated[Path, typer.Option("--file", help="The CSV or Parquet file.")],
    description: Annotated[str, typer.Option(help="What the data is (kept when the dataset is created).")] = "",
    data_format: Annotated[str | None, typer.Option("--format", help="csv or parquet (default: from the "
                                                                     "file's extension).")] = None,
    account: HomeOpt = None,
) -> None:
    """Upload a file (with progress) as the dataset's next version; the server profiles it."""
    if not file.is_file():
        raise ValidationError(f"no such file: {file}", file=str(file))
    fmt = data_format or ("parquet" if file.suffix.lower() in (".parquet", ".pq") else "csv")
    with _state(ctx).client() as client:
        home = _governance(client, ctx, account, session_first=True)
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=console, transient=True) as progress:
            with progress.open(file, "rb", description=f"uploading {file.name}") as reader:
                version = client.register_dataset(home, name, reader, data_format=fmt, description=description)
    show(_state(ctx).output, version, lambda: console.print(
        f"Registered {version.crn}: {version.rows} rows, {len(version.columns)} columns ({version.format})",
        highlight=False))


@app.command("list")
def list_datasets(ctx: typer.Context, account: HomeOpt = None) -> None:
    """The published catalogue of a data-governance account."""
    with _state(ctx).client() as client:
        home = _governance(client, ctx, account, session_first=True)
        items = list(client.datasets(home))
    show(_state(ctx).output, items, lambda: table(
        f"Datasets in {home}", ["name", "owner", "description", "crn"],
        [(d.name, d.owner, d.description, d.crn) for d in items]))


@app.command("show")
def show_dataset(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION")],
                 account: HomeOpt = None) -> None:
    """A dataset's version: its schema, rows, size and digest (the latest by default)."""
    name, number = _ref(ref)
    with _state(ctx).client() as client:
        home = _governance(client, ctx, account, session_first=True)
        dataset = client.dataset(home, name)
        version = client.dataset_version(home, name, number) if number else dataset.latest

    def render() -> None:
        console.print(f"[bold]{escape(dataset.crn)}[/]  owner {escape(dataset.owner)}", highlight=False)
        if dataset.description:
            console.print(dataset.description, markup=False)
        if version is None:
            console.print("no versions yet")
            return
        console.print(f"version {version.version}: {version.rows} rows, {version.size} bytes, "
                      f"{version.format}, sha256 {version.sha256}", highlight=False)
        table("Schema", ["column", "dtype"], [(col.name, col.dtype) for col in version.columns])

    show(_state(ctx).output, {"dataset": dataset.model_dump(mode="json"),
                              "version": version.model_dump(mode="json") if version else None}, render)


@app.command("versions")
def versions(ctx: typer.Context, name: str, account: HomeOpt = None) -> None:
    """The versions of a dataset."""
    with _state(ctx).client() as client:
        home = _governance(client, ctx, account, session_first=True)
        items = list(client.dataset_versions(home, name))
    show(_state(ctx).output, items, lambda: table(
        f"{name} in {home}", ["version", "format", "rows", "columns", "size", "sha256", "registered by", "created"],
        [(v.version, v.format, v.rows, len(v.columns), v.size, v.sha256[:16], v.registered_by, when(v.created_at))
         for v in items]))


@app.command("subscribe")
def subscribe(
    ctx: typer.Context, name: str,
    reason: Annotated[str, typer.Option(help="What the data is for (required).")],
    account: Annotated[str | None, typer.Option(
        "--account", help="The account that will read the data (default: the assumed role's).")] = None,
    project: Annotated[str | None, typer.Option(help="Limit the grant to one project.")] = None,
    dataset_account: DatasetAccountOpt = None,
) -> None:
    """Ask the dataset's owner for reads by your account (or one project of it)."""
    with _state(ctx).client() as client:
        subscriber = _acting(ctx, account)
        home = _governance(client, ctx, dataset_account, session_first=False)
        sub = client.subscribe(home, name, subscriber=subscriber, reason=reason, project=project)
    show(_state(ctx).output, sub, lambda: console.print(
        f"Subscription {sub.id} to {sub.dataset_crn} is {sub.status}; the owner decides it.", highlight=False))


@app.command("subscriptions")
def subscriptions(
    ctx: typer.Context, account: AccountOpt = None,
    status: Annotated[str | None, typer.Option(help="Pending, Approved, Rejected or Revoked.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only the subscriptions to this dataset.")] = None,
) -> None:
    """A data-governance account's: every request to its datasets; any other account's: its own."""
    with _state(ctx).client() as client:
        name = account or _session_account(ctx) or _governance(client, ctx, None, session_first=False)
        items = list(client.subscriptions(name, status=status, dataset=dataset))
    show(_state(ctx).output, items, lambda: table(f"Subscriptions seen from {name}", SUBSCRIPTION_COLUMNS,
                                                  _subscription_rows(items)))


def _decided(ctx: typer.Context, sub: m.SubscriptionOut) -> None:
    show(_state(ctx).output, sub, lambda: console.print(
        f"Subscription {sub.id} ({sub.subscriber} to {sub.dataset}) is now {sub.status}"
        + (f", until {when(sub.expires_at)}" if sub.expires_at and sub.status == "Approved" else "") + ".",
        highlight=False))


@app.command("approve")
def approve(
    ctx: typer.Context, subscription_id: str, account: HomeOpt = None,
    comment: Annotated[str, typer.Option(help="Kept with the decision and in the audit trail.")] = "",
    expires: Annotated[str | None, typer.Option(help="The grant's lifetime, e.g. 30d (default: none).")] = None,
) -> None:
    """Approve a subscription to a dataset you own: the subscriber may read it."""
    from charter.entrypoints.cli.main import parse_duration

    seconds = parse_duration(expires) if expires else None
    with _state(ctx).client() as client:
        home = _governance(client, ctx, account, session_first=True)
        sub = client.approve_subscription(home, subscription_id, comment, expires_in_seconds=seconds)
    _decided(ctx, sub)


@app.command("reject")
def reject(ctx: typer.Context, subscription_id: str,
           comment: Annotated[str, typer.Option(help="Why (required).")], account: HomeOpt = None) -> None:
    """Reject a subscription request."""
    with _state(ctx).client() as client:
        sub = client.reject_subscription(_governance(client, ctx, account, session_first=True), subscription_id,
                                         comment)
    _decided(ctx, sub)


@app.command("revoke")
def revoke(ctx: typer.Context, subscription_id: str, account: HomeOpt = None,
           comment: Annotated[str, typer.Option(help="Why.")] = "") -> None:
    """Revoke an approved subscription: its grant stops admitting reads at once."""
    with _state(ctx).client() as client:
        sub = client.revoke_subscription(_governance(client, ctx, account, session_first=True), subscription_id,
                                         comment)
    _decided(ctx, sub)


@app.command("read")
def read(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (default: latest)")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the file.")],
    account: Annotated[str | None, typer.Option(
        "--account", help="The account you read for (default: the assumed role's).")] = None,
    run: Annotated[str | None, typer.Option(help="The pipeline run reading it (kept as lineage).")] = None,
    project: Annotated[str | None, typer.Option(help="The project reading it, for a project grant.")] = None,
    dataset_account: DatasetAccountOpt = None,
) -> None:
    """Download a version under your account's grant; the read is audited and kept as lineage."""
    name, number = _ref(ref)
    with _state(ctx).client() as client:
        reader = _acting(ctx, account)
        home = _governance(client, ctx, dataset_account, session_first=False)
        version = client.dataset_version(home, name, number)
        partial = out.with_name(out.name + ".part")
        digest = hashlib.sha256()
        try:
            with partial.open("wb") as sink:
                for chunk in client.read_dataset(home, name, for_account=reader, version=version.version,
                                                 run=run, project=project):
                    digest.update(chunk)
                    sink.write(chunk)
            if digest.hexdigest() != version.sha256:  # only a whole, unaltered file lands at --out
                raise IntegrityError(f"the bytes read do not hash to {version.sha256}", sha256=version.sha256)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
    result = {"dataset": name, "version": version.version, "sha256": version.sha256, "size": version.size,
              "for_account": reader, "run": run, "out": str(out)}
    show(_state(ctx).output, result, lambda: console.print(
        f"Read {version.crn} for {reader} into {out} ({version.size} bytes)", highlight=False))


@app.command("reads")
def reads(ctx: typer.Context, name: str, account: HomeOpt = None) -> None:
    """Lineage: who read which version of a dataset, for which account and run."""
    with _state(ctx).client() as client:
        home = _governance(client, ctx, account, session_first=True)
        items = list(client.dataset_reads(home, name))
    show(_state(ctx).output, items, lambda: table(
        f"Reads of {name}", ["time", "reader", "version", "for account", "project", "run", "subscription"],
        [(when(r.time), r.reader, r.version, r.for_account, r.project, r.run, r.subscription) for r in items]))
