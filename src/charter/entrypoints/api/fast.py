"""The hot routes' two shortcuts through the framework, both behaviour-preserving:

- ``in_thread`` runs a blocking call (the message bus) on a worker thread with one
  ``loop.run_in_executor``, in a copy of the request's context (so the policy-decision trace the
  guard middleware set is seen there), instead of anyio's ``to_thread`` with its capacity limiter
  and cancel scopes, which costs twice as much per request;
- ``json_response`` serializes the wire model once, with pydantic's own serializer; returning a
  ``Response`` keeps FastAPI from validating the model a second time before it serializes it. The
  route keeps its ``response_model`` for the OpenAPI document. Given plain data already in the
  wire model's shape (``convert.package_document``), it serializes that with the same serializer,
  which writes what the model would.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel
from starlette.responses import Response

T = TypeVar("T")

# As many threads as anyio's default limiter admits, so the concurrency of blocking work is unchanged.
_POOL = ThreadPoolExecutor(max_workers=40, thread_name_prefix="charter-api")


async def in_thread(fn: Callable[..., T], *args: object) -> T:
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, functools.partial(context.run, fn, *args))


def json_response(model: BaseModel | dict[str, Any], status_code: int = 200) -> Response:
    body = model.model_dump_json().encode() if isinstance(model, BaseModel) else pydantic_core.to_json(model)
    return Response(body, status_code=status_code, media_type="application/json")
