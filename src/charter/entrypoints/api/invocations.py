"""The invocation hot path: predictions served in front of the router.

``POST /api/v1/accounts/{account}/endpoints/{name}/invocations`` is the one route a client calls
hundreds of times a second, and everything a request of it needs is one decision (usually a
remembered one: ``InvocationGate``) and one round trip to a worker. ``InvocationMiddleware`` answers
it as soon as the guard middleware has given it its request id, its body limit and its decision
trace, without the router's matching and dependency resolution; the route in ``routes.endpoints``
documents it in the OpenAPI schema and runs the same ``invoke_endpoint``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from charter.bootstrap import Platform
from charter.entrypoints.api.fast import in_thread
from charter.errors import CharterError, ServerError, ServiceUnavailable, ValidationError

log = logging.getLogger("charter.api")

# The route's own parameter limits (63 characters): anything else goes on to the router, which
# refuses it the way it refuses any bad path parameter.
INVOCATION_PATH = re.compile(r"^/api/v1/accounts/([^/]{1,63})/endpoints/([^/]{1,63})/invocations$")


def bearer_of(authorization: str) -> str | None:
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


async def invoke_endpoint(platform: Platform, account: str, name: str, body: bytes, bearer: str | None,
                          request_id: str | None) -> bytes:
    """One invocation as whoever ``bearer`` authenticates: the answer's JSON. A CharterError
    names what was wrong (the credential, the permission, the payload, the endpoint)."""
    try:
        payload: Any = json.loads(body)
    except RecursionError:
        raise ValidationError("request body is nested too deeply", field="body") from None
    except ValueError:
        raise ValidationError("the body is not JSON", field="body") from None
    gate = platform.invocations
    if gate.remembered(bearer, account, name) is None:
        await in_thread(gate.authorize, bearer, account, name, request_id)
    runtime = platform.bus.endpoints
    if runtime is None:
        raise ServiceUnavailable("this server runs no endpoint workers (endpoints_in_server is off)")
    result = await runtime.ainvoke(account, name, payload)
    return json.dumps(result, separators=(",", ":")).encode()


class InvocationMiddleware:
    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = INVOCATION_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if found is None or scope["method"] != "POST":
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
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        request_id = scope.get("state", {}).get("request_id")
        status = 200
        try:
            body = await invoke_endpoint(self.platform, found[1], found[2], b"".join(chunks),
                                         bearer_of(authorization.decode("latin-1")), request_id)
        except CharterError as error:
            status, body = error.status, json.dumps({"error": error.to_dict()}).encode()
        except Exception:  # noqa: BLE001 - one error shape for every failure, as the router's handler
            log.exception("unhandled error on POST %s", scope["path"])
            failure = ServerError("internal error; the request id is in the X-Request-ID header")
            status, body = failure.status, json.dumps({"error": failure.to_dict()}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
