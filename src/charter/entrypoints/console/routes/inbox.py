"""The home page: what waits for the caller's roles, each decided in place with a comment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from charter.entrypoints.console import views
from charter.entrypoints.console.web import Console, ConsoleRoute

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]


def render_inbox(console: Console, errors: dict[str, dict[str, str]] | None = None, status: int = 200) -> Response:
    return console.render("inbox.html", status=status, items=views.inbox(console), errors=errors or {})


@router.get("/")
def inbox(console: ConsoleDep) -> Response:
    return render_inbox(console)
