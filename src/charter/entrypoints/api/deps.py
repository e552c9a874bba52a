"""Request-scoped dependencies: the platform's bus, the caller's identity, paging parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from charter.config import Settings
from charter.domain.commands import Message, PageRequest
from charter.entrypoints.api.convert import decode_cursor
from charter.errors import ValidationError
from charter.services.messagebus import MessageBus

CURSOR_MAX_LENGTH = 512


def bus(request: Request) -> MessageBus:
    return request.app.state.platform.bus  # type: ignore[no-any-return]


def request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value is not None else None


def bearer_of(authorization: str) -> str | None:
    """The credentials of an ``Authorization: Bearer …`` header; None for any other scheme."""
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


class Caller:
    """The caller of one request: ``caller(message)`` handles a message as whoever the request's
    bearer token authenticates. Authentication happens inside the message's own transaction, in the
    endpoint's thread, so a request costs one transaction and one worker-thread hop."""

    def __init__(self, bus: MessageBus, bearer: str | None, request_id: str | None) -> None:
        self._bus = bus
        self._bearer = bearer
        self._request_id = request_id

    @classmethod
    def of(cls, request: Request) -> Caller:
        return cls(bus(request), bearer_of(request.headers.get("authorization", "")), request_id(request))

    def __call__(self, message: Message) -> Any:
        # Each message authenticates again: a token revoked during a streamed export stops it.
        return self._bus.handle(message, request_id=self._request_id, bearer=self._bearer)

    @property
    def now(self) -> Any:
        return self._bus.clock.now()


async def caller(request: Request) -> Caller:
    return Caller.of(request)  # no I/O here: async keeps it off the worker threads


async def page(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, description="Items per page.")] = None,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX_LENGTH,
                                        description="next_cursor of the previous page.")] = None,
) -> PageRequest:
    return page_request(request.app.state.platform.settings, limit, cursor)


def page_request(settings: Settings, limit: int | None, cursor: str | None) -> PageRequest:
    size = limit or settings.page_size_default
    if size > settings.page_size_max:
        raise ValidationError(f"limit may be at most {settings.page_size_max}", field="limit",
                              max=settings.page_size_max)
    return PageRequest(after=decode_cursor(cursor), limit=size)


CallerDep = Annotated[Caller, Depends(caller)]
PageDep = Annotated[PageRequest, Depends(page)]
