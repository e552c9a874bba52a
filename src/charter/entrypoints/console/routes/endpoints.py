"""Endpoints: their status and configuration revisions (variants, weights, who, when and why),
charts of their recent traffic and latency, and a try-it form that asks for a prediction."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from charter.client import models as m
from charter.domain import commands as c
from charter.domain.authz import Action
from charter.entrypoints.api import convert
from charter.entrypoints.console import views
from charter.entrypoints.console.routes.registry import package_of
from charter.entrypoints.console.svg import chart
from charter.entrypoints.console.web import Console, ConsoleRoute, problem
from charter.errors import CharterError, ValidationError
from charter.services.endpoint_operations import invoke
from charter.services.endpoint_supervisor import EndpointSupervisor

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Name = Annotated[str, Path(max_length=63)]
MAX_PAYLOAD = 256 * 1024


@router.get("/accounts/{account}/endpoints")
def endpoints(account: Name, console: ConsoleDep) -> Response:
    return console.render("endpoints.html", account=account, endpoints=views.endpoints(console, account))


def _supervisor(console: Console) -> EndpointSupervisor | None:
    """The serving supervisor of this process (None when the server runs no endpoint workers)."""
    found = console.bus.endpoints
    return found if isinstance(found, EndpointSupervisor) else None


def _charts(console: Console, account: str, name: str) -> dict[str, Any]:
    supervisor = _supervisor(console)
    points = supervisor.traffic(account, name) if supervisor is not None else []
    labels = [f"{p.start:%H:%M:%S}" for p in points]
    served: list[float | None] = [float(p.requests - p.errors) for p in points]
    failed: list[float | None] = [float(p.errors) for p in points]
    step = (points[1].start - points[0].start).total_seconds() if len(points) > 1 else 0.0
    window = step * len(points)
    return {
        "traffic": chart(f"Requests of {name} per interval", labels, {"served": served, "failed": failed}),
        # A quiet interval has no latency: the lines break there instead of dropping to 0.
        "latency": chart(f"Latency of {name} (ms)", labels,
                         {"p50": [p.p50_ms if p.requests else None for p in points],
                          "p95": [p.p95_ms if p.requests else None for p in points]}, kind="lines", unit=" ms"),
        "requests": sum(p.requests for p in points), "failures": sum(p.errors for p in points),
        "window_minutes": round(window / 60, 1),
        "by_variant": _sum_variants(points),
    }


def _sum_variants(points: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in points:
        for variant, count in p.by_variant.items():
            out[variant] = out.get(variant, 0) + count
    return out


def _sample(console: Console, endpoint: m.EndpointOut) -> str:
    """The serving package's sample payload, when the caller may read the package."""
    serving = next((r for r in endpoint.revisions if r.revision == endpoint.serving_revision), None)
    for variant in serving.variants if serving else []:
        try:
            pkg = package_of(console, variant.package)
        except CharterError:
            continue
        if pkg is not None and pkg.sample_payload:
            return json.dumps(pkg.sample_payload)
    return ""


def render_endpoint(console: Console, account: str, name: str, errors: dict[str, str] | None = None,
                    status: int = 200, answer: dict[str, Any] | None = None) -> Response:
    supervisor = _supervisor(console)
    endpoint = convert.endpoint(console(c.GetEndpoint(account, name)),
                                supervisor.status(account, name) if supervisor is not None else [])
    may_invoke = console.allowed(str(Action.INVOKE_ENDPOINT), account, name)
    serving = next((r for r in endpoint.revisions if r.revision == endpoint.serving_revision), None)
    payload = console.field("payload") if console.form is not None else _sample(console, endpoint)
    return console.render("endpoint.html", status=status, account=account, endpoint=endpoint, serving=serving,
                          may_invoke=may_invoke, errors=errors or {}, answer=answer, payload=payload,
                          revisions=list(reversed(endpoint.revisions)), **_charts(console, account, name))


@router.get("/accounts/{account}/endpoints/{name}")
def endpoint(account: Name, name: Name, console: ConsoleDep) -> Response:
    return render_endpoint(console, account, name)


@router.post("/accounts/{account}/endpoints/{name}/invoke")
def try_it(account: Name, name: Name, console: ConsoleDep) -> Response:
    text = console.field("payload")
    try:
        if len(text) > MAX_PAYLOAD:
            raise ValidationError(f"the payload holds at most {MAX_PAYLOAD} characters", field="payload")
        try:
            payload = json.loads(text)
        except ValueError as bad:
            raise ValidationError(f"the payload is not JSON: {bad}", field="payload") from None
        if not isinstance(payload, dict):
            raise ValidationError('write a JSON object: {"instances": [[...], ...]} or {"inputs": {"column": [...]}}',
                                  field="payload")
        answer = invoke(console.bus, account, name, payload, bearer=console.session.bearer,
                        request_id=console.request.scope.get("state", {}).get("request_id"))
    except CharterError as error:
        # Whatever part of the request the endpoint refused (the body, a row, a column), the
        # form has one field for all of it: the payload.
        errors = {"payload": "; ".join(problem(error).values())}
        return render_endpoint(console, account, name, errors, error.status)
    return render_endpoint(console, account, name, answer=answer)
