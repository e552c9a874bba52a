"""Turning a bearer credential into an identity, or refusing it with the reason."""

from __future__ import annotations

from datetime import datetime

from charter.domain.identity import CredentialKind, Identity, parse_bearer, secret_matches
from charter.errors import Unauthenticated
from charter.services.ports import UnitOfWork


def authenticate(uow: UnitOfWork, bearer: str | None, now: datetime) -> Identity:
    if not bearer:
        raise Unauthenticated("no credentials: send 'Authorization: Bearer <token>'")
    parsed = parse_bearer(bearer)
    if parsed is None:
        raise Unauthenticated("malformed token")
    kind, ident, value = parsed
    if kind is CredentialKind.SESSION:
        session = uow.sessions.get(ident)
        if session is None or not secret_matches(value, session.secret_hash):
            raise Unauthenticated("invalid session token", credential=ident)
        if session.expires_at <= now:
            raise Unauthenticated(f"session {ident} expired at {session.expires_at.isoformat()}; "
                                  "assume the role again", credential=ident)
        token_id, principal = session.token_id, session.principal
    else:
        token_id, principal, session = ident, "", None
    token = uow.tokens.get(token_id)
    if token is None or (session is None and not secret_matches(value, token.secret_hash)):
        raise Unauthenticated("invalid token", credential=ident)
    state = token.state(now)
    if state != "active":
        raise Unauthenticated(f"token {token.id} is {state}", credential=ident)
    found = uow.org.get_principal(token.principal)
    if found is None:
        raise Unauthenticated("the token's principal no longer exists", credential=ident)
    if session is not None and principal != token.principal:
        raise Unauthenticated("invalid session token", credential=ident)
    ends = [t for t in (token.expires_at, session.expires_at if session else None) if t is not None]
    return Identity(token.principal, session.id if session else token.id, session, str(found.kind),
                    min(ends) if ends else None)
