"""``charter endpoints``: deploy, list, show (variants, revision history, status, workers),
invoke, roll back and delete endpoints."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.markup import escape

from charter.client import models as m
from charter.entrypoints.cli.output import console, show, table, when
from charter.entrypoints.cli.registry import _account
from charter.entrypoints.cli.state import state_of as _state
from charter.errors import ValidationError

app = typer.Typer(no_args_is_help=True, help="Endpoints: served model packages, their revisions and invocations.")

AccountOpt = Annotated[str | None, typer.Option("--account", help="Account (default: the assumed role's).")]
COLOURS = {"InService": "green", "Updating": "yellow", "Creating": "yellow", "Failed": "red",
           "Superseded": "grey50"}


def _status(status: str) -> str:
    return f"[{COLOURS.get(status, 'white')}]{status}[/]"


def _variant(text: str) -> m.VariantIn:
    """``CRN`` or ``CRN=WEIGHT`` or ``NAME:CRN=WEIGHT``."""
    name: str | None = None
    package, _, weight = text.partition("=")
    if not package.startswith("crn:"):
        name, _, package = package.partition(":")
    try:
        return m.VariantIn(package=package, weight=float(weight) if weight else 1.0, name=name)
    except ValueError:
        raise ValidationError(f"--package {text!r}: CRN, CRN=WEIGHT or NAME:CRN=WEIGHT", field="package") from None


WAIT_SECONDS = 300.0


def _wait(client: Any, account: str, name: str, done: m.EndpointOut) -> m.EndpointOut:
    """Until the latest revision's rollout ends (or WAIT_SECONDS: it is then still Updating)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while done.revisions[-1].status == "Updating" and time.monotonic() < deadline:
        time.sleep(0.2)
        done = client.endpoint(account, name)
    return done


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    name: str,
    package: Annotated[list[str], typer.Option("--package", help="A model package CRN to serve, as CRN, "
                                                "CRN=WEIGHT or NAME:CRN=WEIGHT (repeat for variants).")],
    replicas: Annotated[int, typer.Option("--replicas", help="Worker processes per variant.")] = 1,
    capture: Annotated[float, typer.Option("--capture", help="Data capture: percent of requests kept.")] = 0.0,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the revision history).")] = "",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the rollout to end.")] = True,
    account: AccountOpt = None,
) -> None:
    """Create the endpoint, or roll out a new configuration blue/green."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        done = client.deploy_endpoint(where, name, [_variant(p) for p in package], replicas=replicas,
                                      capture_percent=capture, reason=reason)
        revision = done.latest_revision
        done = _wait(client, where, name, done) if wait else done
    last = next(r for r in done.revisions if r.revision == revision)
    show(_state(ctx).output, done, lambda: console.print(
        f"{escape(done.crn)} revision {revision}: {_status(last.status)}"
        + (f"  [red]{escape(last.status_reason or '')}[/]" if last.status == "Failed" else "")
        + f"  (serving revision {done.serving_revision})", highlight=False))
    if last.status == "Failed":
        raise typer.Exit(1)


@app.command("list")
def list_(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The account's endpoints."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.endpoints(where))
    show(_state(ctx).output, items, lambda: table(
        f"Endpoints in {where}", ["name", "status", "serving", "latest", "packages"],
        [(e.name, e.status, e.serving_revision, e.latest_revision,
          ", ".join(v.package for r in e.revisions if r.revision == e.serving_revision for v in r.variants))
         for e in items]))


@app.command("show")
def show_endpoint(ctx: typer.Context, name: str, account: AccountOpt = None) -> None:
    """An endpoint: status, the variants it serves, its revision history and this server's workers."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        e = client.endpoint(where, name)

    def render() -> None:
        console.print(f"[bold]{escape(e.crn)}[/]  {_status(e.status)}  serving revision "
                      f"{e.serving_revision if e.serving_revision is not None else '-'}", highlight=False)
        serving = next((r for r in e.revisions if r.revision == e.serving_revision), None)
        if serving is not None:
            table("Variants", ["variant", "package", "weight", "format", "replicas", "inputs"], [
                (v.name, v.package, f"{v.weight:g}", v.format, serving.replicas,
                 ", ".join(c.name for c in v.inputs) if v.inputs else "-") for v in serving.variants])
        table("Revisions", ["revision", "status", "by", "created", "reason", "packages", "outcome"], [
            (r.revision, r.status, r.created_by, when(r.created_at),
             (r.reason + (f" (rollback to {r.rollback_of})" if r.rollback_of else ""))[:60],
             ", ".join(v.package for v in r.variants), (r.status_reason or "")[:80]) for r in e.revisions])
        if e.workers:
            table("Workers", ["revision", "variant", "pid", "state", "serving", "restarts"], [
                (w.revision, w.variant, w.pid, w.state, "yes" if w.serving else "", w.restarts) for w in e.workers])

    show(_state(ctx).output, e, render)


@app.command("invoke")
def invoke(ctx: typer.Context, name: str,
           data: Annotated[str, typer.Option("--data", help='JSON: {"instances": [[...]]} or '
                                             '{"inputs": {"column": [...]}}')],
           account: AccountOpt = None) -> None:
    """Predictions from the endpoint, as you."""
    where = _account(ctx, account)
    try:
        payload: Any = json.loads(data)
    except ValueError as error:
        raise ValidationError(f"--data is not JSON: {error}", field="data") from None
    if not isinstance(payload, dict):
        raise ValidationError('--data is a JSON object: {"instances": [[...]]}', field="data")
    with _state(ctx).client() as client:
        answer = client.invoke_endpoint(where, name, payload)
    show(_state(ctx).output, answer, lambda: console.print(
        f"{json.dumps(answer.predictions)}\n[dim]revision {answer.revision}, variant {escape(answer.variant)}, "
        f"{escape(answer.package)}[/]", highlight=False))


@app.command("rollback")
def rollback(ctx: typer.Context, name: str,
             reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
             wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the rollout to end.")] = True,
             account: AccountOpt = None) -> None:
    """Go back to the configuration before the one that serves (a new revision)."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        done = client.rollback_endpoint(where, name, reason=reason)
        done = _wait(client, where, name, done) if wait else done
    last = done.revisions[-1]
    show(_state(ctx).output, done, lambda: console.print(
        f"{escape(done.crn)} revision {last.revision} (rollback to {last.rollback_of}): {_status(last.status)}",
        highlight=False))


@app.command("delete")
def delete(ctx: typer.Context, name: str, reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
           account: AccountOpt = None) -> None:
    """Delete the endpoint: its workers stop."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        done = client.delete_endpoint(where, name, reason=reason)
    show(_state(ctx).output, done, lambda: console.print(f"Deleted {escape(done.crn)}", highlight=False))
