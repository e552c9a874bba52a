"""Identity: who am I, API tokens, and assume-role sessions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from charter.domain import commands as c
from charter.domain.authz import Action
from charter.domain.events import Event, event_type
from charter.domain.identity import ApiToken, CredentialKind, Secret, Session
from charter.domain.org import MANAGEMENT_ACCOUNT, Principal
from charter.errors import InvalidTransition, NotFound, PermissionDenied, ValidationError
from charter.services import resources
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate


@dataclass(frozen=True, slots=True)
class Me:
    principal: Principal
    via: str
    session: Session | None
    bindings: dict[str, set[str]]


@dataclass(frozen=True, slots=True)
class Issued:
    """A credential and its bearer secret, which is shown this once and never again."""

    bearer: str
    token: ApiToken | None = None
    session: Session | None = None


def whoami(cmd: c.WhoAmI, ctx: HandlerContext) -> Me:
    principal = ctx.uow.org.get_principal(ctx.identity.principal)
    if principal is None:
        raise NotFound(f"unknown principal {ctx.identity.principal!r}")
    ctx.authorize(Action.WHOAMI, resources.principal(principal))
    return Me(principal, ctx.identity.via, ctx.identity.session, ctx.uow.org.roles_of(principal.name))


def create_token(cmd: c.CreateToken, ctx: HandlerContext) -> Issued:
    target = ctx.uow.org.get_principal(cmd.principal)
    ctx.authorize(Action.CREATE_TOKEN, resources.token_of(cmd.principal))
    if target is None:
        raise NotFound(f"unknown principal {cmd.principal!r}", principal=cmd.principal)
    max_seconds = ctx.limits.token_max_days * 86400
    seconds = cmd.expires_in_seconds if cmd.expires_in_seconds is not None else max_seconds
    if not 60 <= seconds <= max_seconds:
        raise ValidationError(
            f"a token expires between 60 seconds and {ctx.limits.token_max_days} days after it is made",
            field="expires_in_seconds", value=seconds)
    now = ctx.clock.now()
    secret = Secret.mint(CredentialKind.TOKEN)
    token = ApiToken(secret.id, target.name, secret.digest, now, ctx.identity.principal,
                     now + timedelta(seconds=seconds), description=cmd.description[:500])
    ctx.uow.tokens.add(token)
    resource = resources.token(token)
    ctx.audit(Action.CREATE_TOKEN, resource, principal=target.name, token=token.id,
              expires_at=token.expires_at.isoformat() if token.expires_at else None)
    ctx.emit(Event(event_type("iam", "token", "created"), MANAGEMENT_ACCOUNT, str(token.crn),
                   {"principal": target.name, "token": token.id}))
    return Issued(secret.bearer, token=token)


def list_tokens(cmd: c.ListTokens, ctx: HandlerContext) -> Page[ApiToken]:
    ctx.authorize(Action.LIST_TOKENS, resources.token_of(cmd.principal or "*"))
    items = ctx.uow.tokens.find(cmd.principal, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda tok: tok.id)


def revoke_token(cmd: c.RevokeToken, ctx: HandlerContext) -> ApiToken:
    token = ctx.uow.tokens.get(cmd.token_id)
    if token is None:
        ctx.authorize(Action.REVOKE_TOKEN, resources.token_of("*", cmd.token_id))
        raise NotFound(f"unknown token {cmd.token_id!r}", token=cmd.token_id)
    ctx.authorize(Action.REVOKE_TOKEN, resources.token(token))
    if token.revoked_at is not None:
        raise InvalidTransition(f"token {token.id} is already revoked", token=token.id)
    now = ctx.clock.now()
    ctx.uow.tokens.revoke(token.id, now)
    ctx.audit(Action.REVOKE_TOKEN, resources.token(token), principal=token.principal, token=token.id)
    ctx.emit(Event(event_type("iam", "token", "revoked"), MANAGEMENT_ACCOUNT, str(token.crn),
                   {"principal": token.principal, "token": token.id}))
    return replace(token, revoked_at=now)


def assume_role(cmd: c.AssumeRole, ctx: HandlerContext) -> Issued:
    if ctx.uow.org.get_account(cmd.account) is None:
        raise NotFound(f"unknown account {cmd.account!r}", account=cmd.account)
    if cmd.role not in ctx.uow.org.load_state().roles:
        raise NotFound(f"unknown role {cmd.role!r}", role=cmd.role)
    bound = ctx.uow.org.roles_of(ctx.identity.principal).get(cmd.account, set())
    try:
        ctx.authorize(Action.ASSUME_ROLE, resources.session_for(cmd.account, cmd.role))
    except PermissionDenied as denied:
        if cmd.role not in bound:
            raise PermissionDenied(
                f"{ctx.identity.principal} holds no role binding as {cmd.role} in {cmd.account}",
                **denied.details) from None
        raise
    limits = ctx.limits
    seconds = cmd.duration_seconds or limits.session_default_seconds
    if not 60 <= seconds <= limits.session_max_seconds:
        raise ValidationError(
            f"a session lasts between 60 and {limits.session_max_seconds} seconds",
            field="duration_seconds", value=seconds)
    now = ctx.clock.now()
    expires = now + timedelta(seconds=seconds)
    parent = ctx.uow.tokens.get(ctx.identity.credential_id)
    if parent is not None and parent.expires_at is not None:
        expires = min(expires, parent.expires_at)  # a session never outlives the token behind it
    secret = Secret.mint(CredentialKind.SESSION)
    session = Session(secret.id, ctx.identity.principal, cmd.account, cmd.role, secret.digest, now,
                      expires, ctx.identity.credential_id)
    ctx.uow.sessions.add(session)
    ctx.audit(Action.ASSUME_ROLE, resources.session_for(cmd.account, cmd.role), session=session.id,
              role=cmd.role, expires_at=expires.isoformat())
    return Issued(secret.bearer, session=session)


HANDLERS: dict[type, Any] = {
    c.WhoAmI: whoami,
    c.CreateToken: create_token,
    c.ListTokens: list_tokens,
    c.RevokeToken: revoke_token,
    c.AssumeRole: assume_role,
}
