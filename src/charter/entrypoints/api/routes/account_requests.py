"""Account vending: requests for new accounts, and the org admin's decisions on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep

router = APIRouter(tags=["account vending"])
REQUESTS = "/account-requests"
RequestId = Annotated[str, Path(max_length=32)]


@router.post(REQUESTS, response_model=m.AccountRequestOut, status_code=201)
def request_account(body: m.AccountRequestIn, caller: CallerDep) -> m.AccountRequestOut:
    """Ask for an account (lead data scientists and ML engineers); the org admin decides."""
    return convert.account_request(caller(c.RequestAccount(body.account, body.ou, body.kind, body.stage,
                                                           body.blueprint, body.reason)))


@router.get(REQUESTS, response_model=m.Page[m.AccountRequestOut])
def list_requests(caller: CallerDep, page: PageDep,
                  status: Annotated[str | None, Query(max_length=16, description="Pending, Approved or Rejected.")]
                  = None) -> m.Page[m.AccountRequestOut]:
    return convert.page(caller(c.ListAccountRequests(status, page)), convert.account_request)


@router.get(REQUESTS + "/{request_id}", response_model=m.AccountRequestOut)
def get_request(request_id: RequestId, caller: CallerDep) -> m.AccountRequestOut:
    return convert.account_request(caller(c.GetAccountRequest(request_id)))


@router.post(REQUESTS + "/{request_id}/approve", response_model=m.AccountRequestOut)
def approve(request_id: RequestId, body: m.AccountRequestDecision, caller: CallerDep) -> m.AccountRequestOut:
    """Vend the account with its blueprint's baseline, in one transaction (org admin)."""
    return convert.account_request(caller(c.DecideAccountRequest(request_id, True, body.comment)))


@router.post(REQUESTS + "/{request_id}/reject", response_model=m.AccountRequestOut)
def reject(request_id: RequestId, body: m.AccountRequestDecision, caller: CallerDep) -> m.AccountRequestOut:
    return convert.account_request(caller(c.DecideAccountRequest(request_id, False, body.comment)))
