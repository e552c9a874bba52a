"""Identity: who am I, tokens, assume-role sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep

router = APIRouter(tags=["identity"])


@router.get("/whoami", response_model=m.WhoAmIOut)
def whoami(caller: CallerDep) -> m.WhoAmIOut:
    me = caller(c.WhoAmI())
    return m.WhoAmIOut(principal=convert.principal(me.principal), via=me.via,
                       session=convert.session(me.session) if me.session else None,
                       bindings=convert.bindings(me.bindings))


@router.post("/tokens", response_model=m.TokenIssued, status_code=201)
def create_token(body: m.TokenCreate, caller: CallerDep) -> m.TokenIssued:
    issued = caller(c.CreateToken(body.principal, body.expires_in_seconds, body.description))
    return m.TokenIssued(token=convert.token(issued.token, caller.now), secret=issued.bearer)


@router.get("/tokens", response_model=m.Page[m.TokenOut])
def list_tokens(
    caller: CallerDep,
    page: PageDep,
    principal: Annotated[str | None, Query(max_length=63, description="Only this principal's tokens.")] = None,
) -> m.Page[m.TokenOut]:
    result = caller(c.ListTokens(principal, page))
    now = caller.now
    return convert.page(result, lambda t: convert.token(t, now))


@router.delete("/tokens/{token_id}", response_model=m.TokenOut)
def revoke_token(token_id: Annotated[str, Path(max_length=32)], caller: CallerDep) -> m.TokenOut:
    return convert.token(caller(c.RevokeToken(token_id)), caller.now)


@router.post("/sessions", response_model=m.SessionIssued, status_code=201)
def assume_role(body: m.SessionCreate, caller: CallerDep) -> m.SessionIssued:
    issued = caller(c.AssumeRole(body.account, body.role, body.duration_seconds))
    return m.SessionIssued(session=convert.session(issued.session), secret=issued.bearer)
