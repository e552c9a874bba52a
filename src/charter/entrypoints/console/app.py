"""Mounting the console on the API's application: its routers at ``/`` and its static files."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from charter.entrypoints.console.routes import (
    audit,
    auth,
    cards,
    catalog,
    data,
    decisions,
    deployments,
    endpoints,
    inbox,
    org,
    pipelines,
    registry,
)
from charter.entrypoints.console.session import Sealer
from charter.entrypoints.console.web import HERE, environment

ROUTERS = (auth.router, inbox.router, decisions.router, org.router, catalog.router, data.router,
           pipelines.router, registry.router, deployments.router, endpoints.router, cards.router,
           audit.router)


def mount_console(app: FastAPI, key: bytes) -> None:
    app.state.console_sealer = Sealer(key)
    app.state.console_env = environment()
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="console-static")
