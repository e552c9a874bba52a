"""Request-scoped dependencies: the platform's bus, the caller's identity, paging parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from charter.domain.commands import Message, PageRequest
from charter.domain.identity import Identity
from charter.entrypoints.api.convert import decode_cursor
from charter.errors import ValidationError
from charter.services.messagebus import MessageBus


def bus(request: Request) -> MessageBus:
    return request.app.state.platform.bus  # type: ignore[no-any-return]


def request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def identity(request: Request) -> Identity:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    bearer = credentials.strip() if scheme.lower() == "bearer" else None
    return bus(request).authenticate(bearer, request_id(request))


class Caller:
    """The authenticated caller, bound to the bus: ``caller(message)`` handles a message as them."""

    def __init__(self, request: Request, who: Annotated[Identity, Depends(identity)]) -> None:
        self.identity = who
        self._bus = bus(request)
        self._request_id = request_id(request)
        self.settings = request.app.state.platform.settings

    def __call__(self, message: Message) -> Any:
        return self._bus.handle(message, self.identity, self._request_id)

    @property
    def now(self) -> Any:
        return self._bus.clock.now()


def page(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, description="Items per page.")] = None,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page.")] = None,
) -> PageRequest:
    settings = request.app.state.platform.settings
    size = limit or settings.page_size_default
    if size > settings.page_size_max:
        raise ValidationError(f"limit may be at most {settings.page_size_max}", field="limit",
                              max=settings.page_size_max)
    return PageRequest(after=decode_cursor(cursor), limit=size)


CallerDep = Annotated[Caller, Depends()]
PageDep = Annotated[PageRequest, Depends(page)]
