"""Signing in with a token, signing out, and switching account and role (the CLI's assume-role)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from charter.domain import commands as c
from charter.entrypoints.console.web import Console, ConsoleRoute
from charter.errors import CharterError, Unauthenticated

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]


def _next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") and value != "/signin" else "/"


@router.get("/signin")
def signin_page(console: ConsoleDep, next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    if console.session.signed_in:
        return console.redirect(_next(next))
    return console.render("signin.html", next=_next(next), errors={})


@router.post("/signin")
def signin(console: ConsoleDep) -> Response:
    token = console.field("token").strip()
    target = _next(console.field("next", "/"))
    if not token:
        return console.render("signin.html", status=400, next=target, errors={"token": "paste your API token"})
    candidate = replace(console.session.anonymous(console.settings.console_session_seconds), token=token)
    console.session = candidate
    try:
        me = console.me  # authenticates the token and asks the policy engine (iam:WhoAmI)
    except Unauthenticated as refused:
        console.session = replace(candidate, token=None)
        return console.render("signin.html", status=401, next=target, errors={"token": refused.message})
    # A new CSRF token at sign-in: one seen before signing in is worth nothing afterwards.
    first = me.session.account if me.session else (sorted(me.bindings)[0] if me.bindings else None)
    signed_in = replace(candidate, account=first)
    return console.redirect(target, f"Signed in as {me.principal.name}", signed_in)


@router.post("/signout")
def signout(console: ConsoleDep) -> Response:
    return console.signed_out()


@router.post("/switch")
def switch(console: ConsoleDep) -> Response:
    """``target`` is ``ACCOUNT`` (every role the token holds, the pages opening on that account) or
    ``ACCOUNT/ROLE`` (an assumed-role session: only that role, only that account)."""
    target = console.field("target")
    back = _next(console.field("next", "/"))
    account, _, role = target.partition("/")
    token_only = replace(console.session, role_session=None)
    if not role:
        console.session = token_only
        if account not in console.me.bindings:
            return console.redirect(back, f"You hold no role in {account!r}")
        return console.redirect(back, f"Working in {account} with all your roles",
                                replace(token_only, account=account))
    console.session = token_only  # no role chaining: a session is always minted from the token
    try:
        issued = console(c.AssumeRole(account, role))
    except CharterError as error:
        return console.redirect(back, f"Could not assume {role} in {account}: {error.message}")
    return console.redirect(back, f"Assumed {role} in {account} until {issued.session.expires_at:%H:%M} UTC",
                            replace(token_only, role_session=issued.bearer, account=account))
