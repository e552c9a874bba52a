"""The hot routes, answered in front of the router.

A few routes carry most of the traffic: invocations, registering and deciding packages, reading
them. Each is a FastAPI route (which documents it in the OpenAPI schema and answers whatever the
lane does not take), and also a ``Lane``: a method, a path pattern with the route's own parameter
limits, and a handler sharing the route's code. ``FastLane`` sits inside the guard middleware, so
a request it answers has had its request id, its body limit and its decision trace; it then skips
the router's matching, dependency resolution and exception middleware, which cost a request more
than the message bus does.

A lane takes only the well-formed case. A handler returns ``None`` for anything else (a body that
does not validate, a parameter out of range, a query it does not know), and the request goes on to
the router with its body, which refuses it the way it refuses any bad request. Errors raised while
handling are answered here in the error shape of ``errors.error_response``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import pydantic
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charter.bootstrap import Platform
from charter.entrypoints.api.deps import Caller, bearer_of
from charter.entrypoints.api.errors import error_response
from charter.entrypoints.api.fast import in_thread
from charter.entrypoints.api.middleware import API_PREFIX, InFlight
from charter.errors import CharterError, ServerError

log = logging.getLogger("charter.api")

M = TypeVar("M", bound=pydantic.BaseModel)
MAX_INT32 = 2**31 - 1
_PARAMETER = re.compile(r"\{(\w+)\}")


def path_pattern(route: str, numbers: Sequence[str] = ()) -> re.Pattern[str]:
    """A route's path (``/accounts/{account}/…``, under the API prefix) as a pattern: a name is 1
    to 63 characters without a slash, as the routes' ``Path(max_length=63)``; a parameter in
    ``numbers`` is a positive integer (``Call.number`` checks its range)."""
    # split() with the pattern's one group alternates literal text and parameter names.
    parts = _PARAMETER.split(API_PREFIX + route)
    return re.compile("^" + "".join(
        re.escape(part) if i % 2 == 0 else r"([1-9][0-9]{0,9})" if part in numbers else r"([^/]{1,63})"
        for i, part in enumerate(parts)) + "$")


@dataclass(frozen=True, slots=True)
class Call:
    """One request a lane may answer: its path parameters, body, query and credential."""

    platform: Platform
    params: tuple[str, ...]
    body: bytes
    scope: Scope
    bearer: str | None
    request_id: str | None
    may_inline: bool
    """Whether a short message may run on the event loop: this is the only request being served,
    and the setting (``api_inline_alone``) allows it."""

    async def handle(self, message: Any, *, short: bool = True) -> Any:
        """The message handled by the bus as the bearer's principal (as a route's ``CallerDep``
        would): on a worker thread, or, for a ``short`` message while no other request is being
        served, right here on the event loop. The two thread hand-offs cost about 0.4 ms of a 2 ms
        request on this project's 2-vCPU VMs; a request that arrives meanwhile waits no longer than
        a short message takes (a few indexed statements, and any wait for a write lock, which
        Charter's writers hold for milliseconds: artifact bytes move outside write transactions)."""
        caller = Caller(self.platform.bus, self.bearer, self.request_id)
        if short and self.may_inline:
            return caller(message)
        return await in_thread(caller, message)

    def model(self, model: type[M]) -> M | None:
        """The JSON body as ``model``; None (the router's case) for any other content or shape."""
        content_type = next((v for k, v in self.scope["headers"] if k == b"content-type"), b"")
        if content_type.split(b";")[0].strip().lower() != b"application/json":
            return None
        try:
            return model.model_validate_json(self.body)
        except (pydantic.ValidationError, ValueError, RecursionError):
            return None

    def number(self, index: int) -> int | None:
        value = int(self.params[index])
        return value if value <= MAX_INT32 else None

    def query(self, *known: str) -> dict[str, str] | None:
        """The query parameters, if each is one of ``known`` and given once; else None."""
        pairs = parse_qsl(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        found = dict(pairs)
        if len(found) != len(pairs) or not found.keys() <= set(known):
            return None
        return found


Handler = Callable[[Call], Awaitable[Response | None]]


@dataclass(frozen=True, slots=True)
class Lane:
    method: str
    path: re.Pattern[str]
    handler: Handler


class FastLane:
    def __init__(self, app: ASGIApp, platform: Platform, lanes: Sequence[Lane], in_flight: InFlight) -> None:
        self.app = app
        self.platform = platform
        self.in_flight = in_flight
        self.inline = platform.settings.api_inline_alone
        self.lanes: dict[str, list[Lane]] = {}
        for lane in lanes:
            self.lanes.setdefault(lane.method, []).append(lane)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lane, found = next(((lane, found) for lane in self.lanes.get(scope["method"], ())
                            if (found := lane.path.match(scope["path"]))), (None, None))
        if lane is None or found is None:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        call = Call(self.platform, found.groups(), body, scope, bearer_of(authorization.decode("latin-1")),
                    scope.get("state", {}).get("request_id"), self.inline and self.in_flight.alone)
        try:
            response = await lane.handler(call)
        except CharterError as error:
            response = error_response(error)
        except Exception:  # noqa: BLE001 - one error shape for every failure, as the router's handler
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = error_response(ServerError("internal error; the request id is in the X-Request-ID header"))
        if response is None:
            await self.app(scope, _replay(body, receive), send)
            return
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the router: the body already read, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay
