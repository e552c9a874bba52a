"""What every console page shares: the caller (the bus as the signed-in user), the CSRF check,
rendering, redirects with a flash message, and errors as pages instead of JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from charter.client import models as m
from charter.domain import commands as c
from charter.domain.authz import Decision
from charter.entrypoints.api import convert
from charter.entrypoints.console.session import COOKIE, ConsoleSession, Sealer
from charter.errors import CharterError, PermissionDenied, Unauthenticated, ValidationError
from charter.services.messagebus import MessageBus

HERE = Path(__file__).parent
MAX_FORM_FIELDS = 200


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["pretty"] = _json
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env


class Console:
    """One console request: ``console(message)`` handles a message as the signed-in user, with the
    same bus, policies and audit trail as the API."""

    def __init__(self, request: Request) -> None:
        self.request = request
        platform = request.app.state.platform
        self.bus: MessageBus = platform.bus
        self.settings = platform.settings
        self.sealer: Sealer = request.app.state.console_sealer
        self.env: Environment = request.app.state.console_env
        opened = self.sealer.open(request.cookies.get(COOKIE))
        self.fresh = opened is None
        self.session = opened or ConsoleSession.anonymous(self.settings.console_session_seconds)
        self.form: FormData | None = request.scope.get("state", {}).get("console_form")
        self._me: m.WhoAmIOut | None = None

    # --- calling the service layer ------------------------------------------------------------

    def __call__(self, message: c.Message) -> Any:
        if not self.session.signed_in:
            raise Unauthenticated("sign in first")
        request_id = self.request.scope.get("state", {}).get("request_id")
        return self.bus.handle(message, request_id=request_id, bearer=self.session.bearer)

    @property
    def now(self) -> datetime:
        return self.bus.clock.now()

    @property
    def me(self) -> m.WhoAmIOut:
        if self._me is None:
            found = self(c.WhoAmI())
            self._me = m.WhoAmIOut(principal=convert.principal(found.principal), via=found.via,
                                   session=convert.session(found.session) if found.session else None,
                                   bindings=convert.bindings(found.bindings))
        return self._me

    def can(self, *abilities: c.Ability) -> tuple[Decision, ...]:
        return self(c.CheckAbilities(tuple(abilities)))  # type: ignore[no-any-return]

    def allowed(self, action: str, account: str = "", name: str = "", key: str = "") -> bool:
        return self.can(c.Ability(action, account, name, key))[0].allowed

    @property
    def accounts(self) -> list[str]:
        """The accounts the caller works in now: the session's, or every account it holds a role in."""
        me = self.me
        if me.session is not None:
            return [me.session.account]
        return sorted(me.bindings)

    @property
    def account(self) -> str | None:
        """The account the navigation opens on."""
        accounts = self.accounts
        if self.session.account in accounts:
            return self.session.account
        return accounts[0] if accounts else None

    # --- forms ---------------------------------------------------------------------------------

    def field(self, name: str, default: str = "") -> str:
        if self.form is None:
            return default
        value = self.form.get(name)
        return value if isinstance(value, str) else default

    # --- responses -----------------------------------------------------------------------------

    def _store(self, response: Response, session: ConsoleSession) -> Response:
        secure = self.request.url.scheme == "https"
        response.set_cookie(COOKIE, self.sealer.seal(session), max_age=int(max(session.expires - time.time(), 0)),
                            httponly=True, samesite="strict", secure=secure, path="/")
        return response

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        flash, session = self.session.flash, replace(self.session, flash=[])
        signed_in = self.session.signed_in
        # The navigation links only to what the caller may read (the audit trail is not for all).
        nav = self.can(c.Ability("audit:ListRecords")) if signed_in else ()
        page = self.env.get_template(template).render(
            console=self, csrf=self.session.csrf, flash=flash, me=self.me if signed_in else None,
            current=self.account if signed_in else None, path=self.request.url.path,
            may_audit=bool(nav and nav[0].allowed), **context)
        response = HTMLResponse(page, status_code=status)
        response.headers["cache-control"] = "no-store"
        response.headers["x-frame-options"] = "DENY"
        response.headers["content-security-policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'")
        response.headers["referrer-policy"] = "same-origin"
        if flash or self.fresh:
            self._store(response, session)
        return response

    def redirect(self, url: str, flash: str | None = None, session: ConsoleSession | None = None) -> Response:
        session = session or self.session
        if flash:
            session = session.with_flash(flash)
        response = RedirectResponse(url if url.startswith("/") and not url.startswith("//") else "/",
                                    status_code=303)
        return self._store(response, session)

    def signed_out(self) -> Response:
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response


def problem(error: CharterError) -> dict[str, str]:
    """Errors by form field, for the template to show next to the field ('' for the whole form)."""
    if not isinstance(error, ValidationError):
        return {"": error.message}
    problems = error.details.get("problems")
    if isinstance(problems, list) and problems and all(isinstance(p, dict) for p in problems):
        # One message per field (the launch parameters name each failing one).
        out: dict[str, str] = {}
        for p in problems:
            name = str(p.get("field", ""))
            out[name] = f"{out[name]}; {p.get('reason')}" if name in out else str(p.get("reason", ""))
        return out
    return {str(error.details.get("field", "")): error.message}


def error_page(request: Request, error: CharterError) -> Response:
    console = Console(request)
    if isinstance(error, Unauthenticated):
        if console.session.signed_in:
            return console.signed_out()
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
    try:
        return console.render("error.html", status=error.status, error=error,
                              denied=isinstance(error, PermissionDenied))
    except Unauthenticated:
        return console.signed_out()


class ConsoleRoute(APIRoute):
    """A console route: form posts must carry the session's CSRF token (checked before the route
    runs, so a forged post changes nothing and reaches no handler), and errors render as pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            if request.method == "POST":
                form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
                request.scope.setdefault("state", {})["console_form"] = form
                console = Console(request)
                presented = form.get("csrf")
                if console.fresh or not console.session.csrf_ok(presented if isinstance(presented, str) else None):
                    return HTMLResponse(
                        "<!doctype html><title>Refused</title><h1>Refused: the form's CSRF token does not "
                        "match your session</h1><p>Reload the page and try again.</p>", status_code=403)
            try:
                return await original(request)
            except CharterError as error:
                return error_page(request, error)
            except RequestValidationError as invalid:
                problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                                     for e in invalid.errors())
                return error_page(request, ValidationError(f"invalid request: {problems}"))

        return handler

