"""``charter cards``: model cards of the central registry, written from files and reviewed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape

from charter.client import models as m
from charter.entrypoints.cli.output import console, show, table, when
from charter.entrypoints.cli.registry import AccountOpt
from charter.entrypoints.cli.registry import _account as account_of
from charter.entrypoints.cli.state import state_of as _state
from charter.errors import ValidationError

app = typer.Typer(no_args_is_help=True, help="Model cards: versions written from files, reviewed by governance.")

Group = Annotated[str, typer.Argument(help="The central model package group the card documents.")]
Comment = Annotated[str, typer.Option(help="Why; kept in the card's history and the audit trail.")]


def _read_document(path: Path) -> Any:
    """A card file, YAML or JSON (JSON is YAML too, but its own parser names its errors better)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ValidationError(f"cannot read {path}: {error.strerror}", file=str(path)) from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ValidationError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}",
                              file=str(path)) from None


def _render(card: m.ModelCardOut) -> None:
    console.print(f"[bold]{escape(card.crn)}[/]  {card.status}", highlight=False)
    console.print(f"version {card.version} of {card.latest_version} ({card.version_status}), "
                  f"approved version: {card.approved_version or 'none'}", highlight=False)
    console.print(f"written by {escape(card.author)} at {when(card.time)}: {escape(card.summary)}", highlight=False)
    console.print(f"documents: {escape(card.package or 'no model package yet')}", highlight=False)
    overview = card.document.get("overview", {})
    table("Overview", ["field", "value"], [(k, v) for k, v in overview.items() if v not in ("", [])])
    if card.evaluation:
        table("Metrics", ["name", "value"], [(k, f"{v:.6g}") for k, v in card.evaluation.get("metrics", [])])
    table("Versions", ["version", "time", "author", "summary", "package"],
          [(v.version, when(v.time), v.author, v.summary, v.package or "") for v in card.versions])
    table("Reviews", ["time", "actor", "from", "to", "version", "comment"],
          [(when(h.time), h.actor, h.previous, h.status, h.version, h.comment) for h in card.history])


def _done(ctx: typer.Context, card: m.ModelCardOut, what: str) -> None:
    show(_state(ctx).output, card, lambda: console.print(
        f"{what} {card.crn}: version {card.latest_version}, {card.status}.", highlight=False))


@app.command("list")
def list_cards(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The model cards of a central account."""
    name = account_of(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.model_cards(name))
    show(_state(ctx).output, items, lambda: table(
        f"Model cards in {name}", ["group", "status", "version", "approved", "last change"],
        [(x.group, x.status, x.latest_version, x.approved_version or "", x.summary) for x in items]))


@app.command("show")
def show_card(ctx: typer.Context, group: Group, account: AccountOpt = None,
              version: Annotated[int | None, typer.Option(help="A version; the latest by default.")] = None) -> None:
    """A card: its status, versions, reviews and the version's overview and metrics."""
    with _state(ctx).client() as client:
        card = client.model_card(account_of(ctx, account), group, version)
    show(_state(ctx).output, card, lambda: _render(card))


@app.command("edit")
def edit(ctx: typer.Context, group: Group,
         file: Annotated[Path, typer.Option("--file", "-f", help="The card document, YAML or JSON.")],
         account: AccountOpt = None,
         summary: Annotated[str, typer.Option(help="What changed, kept with the version.")] = "",
         expected_version: Annotated[int | None, typer.Option(
             help="The version you last read (0: none); refused if the card has moved on.")] = None) -> None:
    """Write a new version of a card from a file (the first edit creates the card)."""
    document = _read_document(file)
    with _state(ctx).client() as client:
        try:
            card = client.edit_model_card(account_of(ctx, account), group, document, summary=summary,
                                          expected_version=expected_version)
        except ValidationError as refused:
            if "problems" in refused.details:  # name the file beside each problem's path
                raise ValidationError(refused.message, **{**refused.details, "file": str(file)}) from None
            raise
    _done(ctx, card, "Wrote")


@app.command("submit")
def submit(ctx: typer.Context, group: Group, account: AccountOpt = None, comment: Comment = "") -> None:
    """Send the latest version for review (Draft -> PendingReview)."""
    with _state(ctx).client() as client:
        card = client.submit_model_card(account_of(ctx, account), group, comment)
    _done(ctx, card, "Submitted")


@app.command("approve")
def approve(ctx: typer.Context, group: Group, account: AccountOpt = None, comment: Comment = "",
            version: Annotated[int | None, typer.Option(
                help="The version you reviewed; refused if another is under review.")] = None) -> None:
    """Approve the version under review (not one you wrote)."""
    with _state(ctx).client() as client:
        card = client.approve_model_card(account_of(ctx, account), group, comment, version=version)
    _done(ctx, card, "Approved")


@app.command("reject")
def reject(ctx: typer.Context, group: Group,
           comment: Annotated[str, typer.Option(help="Why it goes back to Draft (required).")],
           account: AccountOpt = None) -> None:
    """Send the version under review back to Draft."""
    with _state(ctx).client() as client:
        card = client.reject_model_card(account_of(ctx, account), group, comment)
    _done(ctx, card, "Rejected")


@app.command("archive")
def archive(ctx: typer.Context, group: Group, account: AccountOpt = None, comment: Comment = "") -> None:
    """Retire an approved card for good."""
    with _state(ctx).client() as client:
        card = client.archive_model_card(account_of(ctx, account), group, comment)
    _done(ctx, card, "Archived")


@app.command("export")
def export(ctx: typer.Context, group: Group, account: AccountOpt = None,
           export_format: Annotated[str, typer.Option("--format", help="markdown, html or json.")] = "markdown",
           version: Annotated[int | None, typer.Option(help="A version; the latest by default.")] = None,
           out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
           ) -> None:
    """The card as Markdown, a standalone printable HTML page, or JSON."""
    with _state(ctx).client() as client:
        text = client.export_model_card(account_of(ctx, account), group, export_format, version=version)
    if out is not None:
        try:
            out.write_text(text)
        except OSError as error:
            raise ValidationError(f"cannot write {out}: {error.strerror}", file=str(out)) from None
        result: dict[str, Any] = {"group": group, "format": export_format, "file": str(out),
                                  "bytes": len(text.encode())}
        show(_state(ctx).output, result, lambda: console.print(f"Wrote {out}", highlight=False, markup=False))
        return
    show(_state(ctx).output, {"group": group, "format": export_format, "content": text},
         lambda: print(text, end=""))
