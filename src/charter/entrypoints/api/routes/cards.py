"""Model cards of the central account: versions written from documents, the review, exports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep
from charter.services.handlers.cards import CardExport, CardView

router = APIRouter(tags=["cards"])
AccountName = Annotated[str, Path(max_length=63)]
GroupName = Annotated[str, Path(max_length=63)]
VersionQuery = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="A version; the latest if left out.")]
CARDS = "/accounts/{account}/cards"
CARD = CARDS + "/{group}"


@router.get(CARDS, response_model=m.Page[m.ModelCardOut])
def list_cards(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.ModelCardOut]:
    return convert.page(caller(c.ListModelCards(account, page)), convert.model_card)


@router.get(CARD, response_model=m.ModelCardOut)
def get_card(account: AccountName, group: GroupName, caller: CallerDep,
             version: VersionQuery = None) -> m.ModelCardOut:
    view: CardView = caller(c.GetModelCard(account, group, version))
    return convert.model_card(view.card, view.version)


@router.post(CARD + "/versions", response_model=m.ModelCardOut, status_code=201)
def edit_card(account: AccountName, group: GroupName, body: m.CardEdit, caller: CallerDep) -> m.ModelCardOut:
    """Write a new version; the first edit of a central group creates its card (Draft)."""
    return convert.model_card(caller(c.EditModelCard(account, group, body.document, body.summary,
                                                     body.expected_version)))


@router.post(CARD + "/submit", response_model=m.ModelCardOut)
def submit_card(account: AccountName, group: GroupName, body: m.CardComment, caller: CallerDep) -> m.ModelCardOut:
    return convert.model_card(caller(c.SubmitModelCard(account, group, body.comment)))


@router.post(CARD + "/approve", response_model=m.ModelCardOut)
def approve_card(account: AccountName, group: GroupName, body: m.CardApprove, caller: CallerDep) -> m.ModelCardOut:
    """Approve the version under review; never by anyone who wrote a version of it under review."""
    return convert.model_card(caller(c.ApproveModelCard(account, group, body.comment, body.version)))


@router.post(CARD + "/reject", response_model=m.ModelCardOut)
def reject_card(account: AccountName, group: GroupName, body: m.CardComment, caller: CallerDep) -> m.ModelCardOut:
    """Send the version under review back to Draft; the comment saying why is required."""
    return convert.model_card(caller(c.RejectModelCard(account, group, body.comment)))


@router.post(CARD + "/archive", response_model=m.ModelCardOut)
def archive_card(account: AccountName, group: GroupName, body: m.CardComment, caller: CallerDep) -> m.ModelCardOut:
    return convert.model_card(caller(c.ArchiveModelCard(account, group, body.comment)))


@router.get(CARD + "/export", response_class=Response, responses={200: {
    "description": "The card as Markdown, a standalone HTML page, or JSON",
    "content": {"text/markdown": {}, "text/html": {}, "application/json": {}}}})
def export_card(account: AccountName, group: GroupName, caller: CallerDep,
                export_format: Annotated[str, Query(alias="format", max_length=16,
                                                    description="markdown, html or json")] = "markdown",
                version: VersionQuery = None) -> Response:
    exported: CardExport = caller(c.ExportModelCard(account, group, export_format, version))
    return Response(exported.text, media_type=exported.media_type,
                    headers={"content-disposition": f'inline; filename="{exported.filename}"'})
