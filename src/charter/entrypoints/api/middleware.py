"""ASGI middleware: request ids, body size limits, and the guarantee that every API request and
every console page reached a policy decision before it may succeed."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charter.errors import CharterError, ServerError, TooLarge
from charter.services.authorization import decision_trace

log = logging.getLogger("charter.api")

API_PREFIX = "/api/v1"
# Uploads (artifacts, dataset files, product archives) are the one kind of request allowed a body
# larger than a JSON document.
UPLOAD_PATH = re.compile(r"^/api/v1/accounts/[a-z][a-z0-9-]{0,62}/"
                         r"(artifacts|data/datasets|catalog/portfolios/[a-z][a-z0-9-]{0,62}/publish)$")

# Answered without a decision: health, the API's own description, the console's sign-in and its
# static files. Everything else — the API and every console page — must have been decided.
UNGUARDED = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
                       "/signin", "/signout"})
STATIC_PREFIX = "/static/"


def guard_threshold(path: str) -> int | None:
    """The lowest status that may be sent without a policy decision, or None: not guarded. A
    console page may redirect undecided (to the sign-in page) but shows nothing undecided."""
    if path.startswith(API_PREFIX):
        return 400
    if path in UNGUARDED or path.startswith(STATIC_PREFIX):
        return None
    return 300


async def send_error(send: Send, error: CharterError, request_id: str) -> None:
    body = json.dumps({"error": error.to_dict()}).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-request-id", request_id.encode())]})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


class InFlight:
    """How many HTTP requests the app is serving now, counted by the guard on the event loop (so
    read there without a lock)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    @property
    def alone(self) -> bool:
        """Whether the request asking is the only one being served."""
        return self.count <= 1


class GuardMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int,
                 large_bodies: tuple[re.Pattern[str], int] | None = None,
                 in_flight: InFlight | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.large_bodies = large_bodies
        self.in_flight = in_flight or InFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        limit = self.max_body_bytes
        if self.large_bodies is not None and self.large_bodies[0].match(scope["path"]):
            limit = self.large_bodies[1]
        too_large = TooLarge(f"request body larger than {limit} bytes", limit=limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await send_error(send, too_large, request_id)
                return

        received, exceeded = 0, False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        threshold = guard_threshold(scope["path"])
        guarded = threshold is not None
        trace: list[Any] = []
        token = decision_trace.set(trace) if guarded else None
        started = False

        async def checked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if exceeded:  # the framework may have turned the interrupted read into a 400
                    started = True
                    await send_error(send, too_large, request_id)
                    raise _Swallowed
                if threshold is not None and message["status"] < threshold and not trace:
                    # Fail closed: a route that answered without asking the policy engine is a bug.
                    log.error("%s %s answered without a policy decision", scope["method"], scope["path"])
                    started = True
                    await send_error(send, ServerError("no policy decision was made for this request"),
                                     request_id)
                    raise _Swallowed
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
                started = True
            await send(message)

        self.in_flight.count += 1
        try:
            await self.app(scope, limited_receive, checked_send)
        except _BodyTooLarge:
            if not started:
                await send_error(send, too_large, request_id)
        except _Swallowed:
            pass
        finally:
            self.in_flight.count -= 1
            if token is not None:
                decision_trace.reset(token)


class _Swallowed(Exception):
    """Raised to stop the app sending a response the guard has already replaced."""
