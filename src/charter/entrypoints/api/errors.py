"""One JSON error shape for every failure: ``{"error": {"type", "message", "details"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from charter.client.models import ErrorBody
from charter.errors import (
    CharterError,
    MethodNotAllowed,
    NotFound,
    ServerError,
    TooLarge,
    ValidationError,
)

log = logging.getLogger("charter.api")


def error_response(error: CharterError) -> JSONResponse:
    return JSONResponse({"error": error.to_dict()}, status_code=error.status)


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "(body)"


def install(app: FastAPI) -> None:
    @app.exception_handler(CharterError)
    async def _charter(_: Request, exc: CharterError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": _field(tuple(e.get("loc", ()))), "reason": str(e.get("msg"))}
                    for e in exc.errors()]
        summary = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
        return error_response(ValidationError(f"invalid request: {summary}", problems=problems))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound("no such route"))
        if exc.status_code == 405:
            response = error_response(MethodNotAllowed("this route does not take that method"))
            response.headers.update(getattr(exc, "headers", None) or {})
            return response
        if exc.status_code == 413:
            return error_response(TooLarge(str(exc.detail)))
        return error_response(ValidationError(str(exc.detail)) if exc.status_code < 500
                              else ServerError(str(exc.detail)))

    @app.exception_handler(RecursionError)
    async def _deep(_: Request, exc: RecursionError) -> JSONResponse:
        return error_response(ValidationError("request body is nested too deeply"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ServerError("internal error; the request id is in the X-Request-ID header"))


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "ValidationError"),
        (401, "Unauthenticated"),
        (403, "PermissionDenied: names the deciding policy"),
        (404, "NotFound"),
        (409, "Conflict or InvalidTransition"),
        (413, "TooLarge"),
    )
}
