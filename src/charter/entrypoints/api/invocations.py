"""The invocation hot path: predictions served in front of the router.

``POST /api/v1/accounts/{account}/endpoints/{name}/invocations`` is the one route a client calls
hundreds of times a second, and everything a request of it needs is one decision (usually a
remembered one: ``InvocationGate``) and one round trip to a worker. Its lane (``fastlane``) answers it
in front of the router; the route in ``routes.endpoints`` documents it in the OpenAPI schema and
runs the same ``invoke_endpoint``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from charter.bootstrap import Platform
from charter.entrypoints.api.fast import in_thread
from charter.entrypoints.api.fastlane import Call, Lane, path_pattern
from charter.errors import ServiceUnavailable, ValidationError


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


async def _invocation(call: Call) -> Response:
    body = await invoke_endpoint(call.platform, call.params[0], call.params[1], call.body, call.bearer,
                                 call.request_id)
    return Response(body, media_type="application/json")


LANES = (Lane("POST", path_pattern("/accounts/{account}/endpoints/{name}/invocations"), _invocation),)
