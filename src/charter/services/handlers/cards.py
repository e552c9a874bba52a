"""Model cards: edits into immutable versions, the review, exports, and the promotion hook.

A card documents one model package group of a central (shared-services) account and lives in that
account's ``cards`` service (``crn:charter:<account>:cards:model-card/<group>``). Its readers are
the account's members and the accounts the group's resource policy admits, as for the group itself.
Every change is audited with the card, its version and its status before and after, and emits
``charter.cards.model-card.state-changed``; an edit emits it too, naming the new version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from charter.domain import commands as c
from charter.domain.authz import Action, Resource
from charter.domain.card_json import card_to_json
from charter.domain.cards import (
    MAX_LINE,
    MAX_TEXT,
    CardContent,
    CardStatus,
    ModelCard,
    Overview,
    card_content_from_document,
    render_html,
    render_markdown,
)
from charter.domain.crn import CRN
from charter.domain.events import Event, event_type
from charter.domain.org import Account, AccountKind
from charter.domain.registry import ModelPackage, ModelPackageGroup
from charter.errors import Conflict, NotFound, ValidationError
from charter.services.handlers.registry import reader_accounts
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate

STATE_CHANGED: Final = event_type("cards", "model-card", "state-changed")
FORMATS: Final = {"markdown": ("text/markdown; charset=utf-8", "md"),
                  "html": ("text/html; charset=utf-8", "html"),
                  "json": ("application/json", "json")}


@dataclass(frozen=True, slots=True)
class CardView:
    """A card with the version to show (the latest unless a reader asked for another)."""

    card: ModelCard
    version: int


@dataclass(frozen=True, slots=True)
class CardExport:
    text: str
    media_type: str
    filename: str


# ---- resources --------------------------------------------------------------------------------



def _attrs(ctx: HandlerContext, account: Account, group: ModelPackageGroup | None) -> dict[str, Any]:
    readers = reader_accounts(group.readers, ctx.uow.org.load_state) if group else []
    return {"account_kind": str(account.kind), "stage": str(account.stage or ""), "readers": readers}


def _cards_resource(ctx: HandlerContext, account: Account) -> Resource:
    return Resource(CRN(account.name, "cards", "model-card", "*"), "ModelCards", _attrs(ctx, account, None))


def _card_resource(ctx: HandlerContext, account: Account, group: ModelPackageGroup,
                   card: ModelCard | None) -> Resource:
    attrs = _attrs(ctx, account, group)
    if card is not None:
        attrs["status"] = str(card.status)
        if card.status is CardStatus.PENDING_REVIEW:
            # Who wrote a version under review: none of them may approve it.
            attrs["authors"] = sorted(card.authors_under_review)
    return Resource(CRN(account.name, "cards", "model-card", group.name), "ModelCard", attrs)


def _central(ctx: HandlerContext, name: str) -> Account:
    """The account, if it keeps model cards; decided first, so a refusal never leaks more."""
    account = ctx.account(name)
    if account.kind is not AccountKind.SHARED_SERVICES:
        ctx.authorize(Action.LIST_CARDS, _cards_resource(ctx, account))
        raise ValidationError(f"{account.name} is a {account.kind} account; model cards are kept in "
                              "the shared-services account beside the central registry",
                              field="account", account=account.name)
    return account


def _group(ctx: HandlerContext, account: Account, name: str) -> ModelPackageGroup:
    group = ctx.uow.registry.get_group(account.name, name)
    if group is None:
        ctx.authorize(Action.LIST_CARDS, _cards_resource(ctx, account))
        raise NotFound(f"no model package group {name!r} in {account.name} to document", group=name)
    return group


def _require_card(ctx: HandlerContext, account: Account, name: str) -> tuple[ModelPackageGroup, ModelCard]:
    card = ctx.uow.cards.get(account.name, name)
    if card is None:
        ctx.authorize(Action.LIST_CARDS, _cards_resource(ctx, account))
        raise NotFound(f"no model card for {name!r} in {account.name}", group=name)
    group = ctx.uow.registry.get_group(account.name, name)
    if group is None:  # pragma: no cover - a card's row references its group
        raise NotFound(f"no model package group {name!r} in {account.name}", group=name)
    return group, card


def _record(ctx: HandlerContext, action: Action, account: Account, group: ModelPackageGroup,
            card: ModelCard, previous: CardStatus | None, comment: str, **extra: Any) -> None:
    """Audit a change and emit its event, in the transaction that made it."""
    version = card.count
    previous_status = str(previous) if previous is not None else None
    ctx.audit(action, _card_resource(ctx, account, group, card), version=version,
              status=str(card.status), previous_status=previous_status, comment=comment, **extra)
    ctx.emit(Event(STATE_CHANGED, account.name, str(card.crn), {
        "group": group.name, "version": version, "status": str(card.status),
        "previous_status": previous_status, "actor": ctx.identity.principal, "comment": comment,
        **extra}))


# ---- queries ----------------------------------------------------------------------------------


def get_card(cmd: c.GetModelCard, ctx: HandlerContext) -> CardView:
    account = _central(ctx, cmd.account)
    group, card = _require_card(ctx, account, cmd.group)
    ctx.authorize(Action.DESCRIBE_CARD, _card_resource(ctx, account, group, card))
    number = cmd.version if cmd.version is not None else card.count
    return CardView(card, card.version(number).number)


def list_cards(cmd: c.ListModelCards, ctx: HandlerContext) -> Page[ModelCard]:
    account = _central(ctx, cmd.account)
    ctx.authorize(Action.LIST_CARDS, _cards_resource(ctx, account))
    items = ctx.uow.cards.list(account.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda card: card.group)


def export_card(cmd: c.ExportModelCard, ctx: HandlerContext) -> CardExport:
    view = get_card(c.GetModelCard(cmd.account, cmd.group, cmd.version), ctx)
    if cmd.format not in FORMATS:
        raise ValidationError(f"unknown export format {cmd.format!r}: use {', '.join(FORMATS)}",
                              field="format")
    card, number = view.card, view.version
    if cmd.format == "markdown":
        text = render_markdown(card, number)
    elif cmd.format == "html":
        text = render_html(card, number)
    else:
        text = json.dumps(card_to_json(card, number), indent=2, ensure_ascii=False) + "\n"
    media_type, suffix = FORMATS[cmd.format]
    return CardExport(text, media_type, f"{card.group}-v{number}.{suffix}")


# ---- commands ---------------------------------------------------------------------------------


def edit_card(cmd: c.EditModelCard, ctx: HandlerContext) -> ModelCard:
    account = _central(ctx, cmd.account)
    group = _group(ctx, account, cmd.group)
    card = ctx.uow.cards.get(account.name, group.name)
    ctx.authorize(Action.EDIT_CARD, _card_resource(ctx, account, group, card))
    content = card_content_from_document(cmd.document)
    current = card.count if card is not None else 0
    if cmd.expected_version is not None and cmd.expected_version != current:
        raise Conflict(f"the card of {group.name} is at version {current}, not {cmd.expected_version}: "
                       "someone edited it since you read it; read it again", group=group.name,
                       version=current, expected=cmd.expected_version)
    summary = cmd.summary if cmd.summary.strip() else ("Created the card" if card is None else "Edited the card")
    now = ctx.clock.now()
    if card is None:
        edited = ModelCard.create(account.name, group.name, ctx.identity.principal, now, content,
                                  summary=summary)
        ctx.uow.cards.add(edited)
    else:
        edited = card.edit(ctx.identity.principal, now, summary, content=content)
        ctx.uow.cards.save(edited)
    _record(ctx, Action.EDIT_CARD, account, group, edited, card.status if card else None, summary)
    return edited


def _move(ctx: HandlerContext, account_name: str, group_name: str, action: Action, comment: str,
          change: Callable[[ModelCard], ModelCard]) -> ModelCard:
    account = _central(ctx, account_name)
    group, card = _require_card(ctx, account, group_name)
    ctx.authorize(action, _card_resource(ctx, account, group, card))
    moved = change(card)
    ctx.uow.cards.save(moved)
    _record(ctx, action, account, group, moved, card.status, comment)
    return moved


def submit_card(cmd: c.SubmitModelCard, ctx: HandlerContext) -> ModelCard:
    return _move(ctx, cmd.account, cmd.group, Action.SUBMIT_CARD, cmd.comment,
                 lambda card: card.submit(ctx.identity.principal, ctx.clock.now(), cmd.comment))


def approve_card(cmd: c.ApproveModelCard, ctx: HandlerContext) -> ModelCard:
    return _move(ctx, cmd.account, cmd.group, Action.APPROVE_CARD, cmd.comment,
                 lambda card: card.approve(ctx.identity.principal, ctx.clock.now(), cmd.comment,
                                           version=cmd.version))


def reject_card(cmd: c.RejectModelCard, ctx: HandlerContext) -> ModelCard:
    return _move(ctx, cmd.account, cmd.group, Action.REJECT_CARD, cmd.comment,
                 lambda card: card.reject(ctx.identity.principal, ctx.clock.now(), cmd.comment))


def archive_card(cmd: c.ArchiveModelCard, ctx: HandlerContext) -> ModelCard:
    return _move(ctx, cmd.account, cmd.group, Action.ARCHIVE_CARD, cmd.comment,
                 lambda card: card.archive(ctx.identity.principal, ctx.clock.now(), cmd.comment))


# ---- the promotion hook -------------------------------------------------------------------------


def _fits(**fields: str) -> bool:
    try:
        Overview(**fields)  # type: ignore[arg-type]
    except ValidationError:
        return False
    return True


def _prefill(package: ModelPackage) -> CardContent:
    """A first card's content from its package: what the registrant wrote, the estimator's name."""
    description = package.description[:MAX_TEXT]
    algorithm = dict(package.tags).get("estimator", "")[:MAX_LINE]
    return CardContent(overview=Overview(
        description=description if _fits(description=description) else "",
        algorithm=algorithm if _fits(algorithm=algorithm) else ""))


def record_package(ctx: HandlerContext, package: ModelPackage) -> tuple[ModelCard, int | None]:
    """Called inside the promotion command's transaction for a newly registered central
    package: creates the group's card (Draft, version 1, content prefilled from the package:
    overview.description from package.description, algorithm from the package's estimator tag
    if any) documenting the package, or adds a version documenting it. Idempotent: if any
    version already documents package.crn, returns (card, that version) unchanged. If the card
    is PendingReview or Archived it is left unchanged and returns (card, None). Audits and
    emits like an edit; authorizes nothing itself (the caller already did)."""
    account = ctx.account(package.account)
    if account.kind is not AccountKind.SHARED_SERVICES:
        raise ValidationError(f"{package.crn} is not a central package: model cards document the "
                              "packages of shared-services accounts", package=str(package.crn))
    group = ctx.uow.registry.get_group(account.name, package.group)
    if group is None:
        raise NotFound(f"no model package group {package.group!r} in {account.name}", group=package.group)
    # The latest version only, and an indexed lookup for the idempotency: documenting a package
    # costs the same on the card's thousandth version as on its second.
    card = ctx.uow.cards.get_latest(account.name, group.name)
    summary = f"Documents {package.crn}"
    now = ctx.clock.now()
    if card is None:
        created = ModelCard.create(account.name, group.name, ctx.identity.principal, now,
                                   _prefill(package), package, summary)
        ctx.uow.cards.add(created)
        _record(ctx, Action.EDIT_CARD, account, group, created, None, summary, package=str(package.crn))
        return created, 1
    documented = ctx.uow.cards.documenting(account.name, group.name, str(package.crn))
    if documented is not None:
        return card, documented
    if card.status in (CardStatus.PENDING_REVIEW, CardStatus.ARCHIVED):
        return card, None
    edited = card.edit(ctx.identity.principal, now, summary, package=package)
    ctx.uow.cards.save(edited)
    _record(ctx, Action.EDIT_CARD, account, group, edited, card.status, summary, package=str(package.crn))
    return edited, edited.count


HANDLERS: dict[type, Any] = {
    c.GetModelCard: get_card,
    c.ListModelCards: list_cards,
    c.ExportModelCard: export_card,
    c.EditModelCard: edit_card,
    c.SubmitModelCard: submit_card,
    c.ApproveModelCard: approve_card,
    c.RejectModelCard: reject_card,
    c.ArchiveModelCard: archive_card,
}
