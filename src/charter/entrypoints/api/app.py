"""The FastAPI application: routes under /api/v1, one error shape, every request decided."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from charter import __version__
from charter.bootstrap import Platform
from charter.client.models import Health
from charter.domain.commands import ReadMetrics
from charter.entrypoints.api import errors, invocations
from charter.entrypoints.api.deps import Caller
from charter.entrypoints.api.fast import in_thread
from charter.entrypoints.api.fastlane import FastLane
from charter.entrypoints.api.links import add_links
from charter.entrypoints.api.middleware import API_PREFIX, UPLOAD_PATH, GuardMiddleware, InFlight
from charter.entrypoints.api.routes import (
    account_requests,
    audit,
    cards,
    catalog,
    datasets,
    deployments,
    endpoints,
    events,
    iam,
    org,
    pipelines,
    projects,
    registry,
)

# all mounted under API_PREFIX
ROUTERS = (org.router, iam.router, audit.router, registry.router, cards.router, events.router,
           datasets.router, catalog.router, account_requests.router, projects.router, pipelines.router,
           endpoints.router, deployments.router)


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="Charter",
        version=__version__,
        description="Governance of the machine-learning lifecycle across isolated accounts.",
        openapi_url="/openapi.json",
        # A redirect to the slash-less route would answer before any policy decision (which the
        # guard turns into a 500); a path with a stray slash is simply no route.
        redirect_slashes=False,
        telemetry=None if platform.settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.platform = platform
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX, responses=errors.ERROR_RESPONSES)
    errors.install(app)
    in_flight = InFlight()  # counted by the guard, read by the lanes
    # inside the guard (added after it)
    app.add_middleware(FastLane, platform=platform, lanes=(*invocations.LANES, *registry.LANES),
                       in_flight=in_flight)
    app.add_middleware(GuardMiddleware, max_body_bytes=platform.settings.max_request_bytes,
                       large_bodies=(UPLOAD_PATH, platform.settings.max_artifact_bytes), in_flight=in_flight)

    @app.get("/metrics", tags=["endpoints"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def metrics(request: Request) -> Response:
        """Serving metrics in the Prometheus text format: per endpoint and variant, requests,
        errors and a latency histogram. Needs a bearer token of a principal holding a role."""
        await in_thread(Caller.of(request), ReadMetrics())
        body, content_type = platform.endpoints.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def health() -> Health:
        return Health(status="ok", version=__version__)

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """The generated schema with the OpenAPI links of ``links.LINKS`` (built once, then cached)."""
        if app.openapi_schema is None:
            app.openapi_schema = add_links(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
