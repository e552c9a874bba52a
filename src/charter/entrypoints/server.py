"""Running the control plane: uvicorn around the API, with the background schedulers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from charter.bootstrap import Platform
from charter.entrypoints.api.app import create_app
from charter.entrypoints.console.app import mount_console

log = logging.getLogger("charter.server")


def server_app(platform: Platform) -> FastAPI:
    """The API, the web console at ``/``, and the schedulers that belong to a running server (audit
    checkpoint signing, the event dispatcher, the pipeline runner, the serving supervisor and the
    deployment runner, each in a thread of its own, stopped before the server exits)."""
    app = create_app(platform)
    mount_console(app, platform.console_key)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_checkpoints(platform))
        stop = threading.Event()
        dispatcher = threading.Thread(target=platform.dispatcher.run_forever, args=(stop,),
                                      name="charter-dispatcher", daemon=True)
        if platform.settings.dispatch_in_server:
            dispatcher.start()
        pipelines = threading.Thread(target=platform.pipelines.run_forever, args=(stop,),
                                     name="charter-pipelines", daemon=True)
        if platform.settings.pipelines_in_server:
            platform.bus.outbox_listeners.append(platform.pipelines.wake)
            pipelines.start()
        endpoints = threading.Thread(target=platform.endpoints.run_forever, args=(stop,),
                                     name="charter-endpoints", daemon=True)
        if platform.settings.endpoints_in_server:
            platform.bus.endpoints = platform.endpoints
            platform.bus.outbox_listeners.append(platform.endpoints.wake)
            endpoints.start()
        deployments = threading.Thread(target=platform.deployments.run_forever, args=(stop,),
                                       name="charter-deployments", daemon=True)
        if platform.settings.deployments_in_server:
            platform.bus.outbox_listeners.append(platform.deployments.wake)
            deployments.start()
        # What start-up made (routes, schemas, policies, the runtimes' imports) lives as long as the
        # server: out of the collector's way, so that a full collection stays short under load.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            stop.set()
            platform.endpoints.wake()
            if endpoints.is_alive():
                await asyncio.to_thread(endpoints.join, 30)
            platform.dispatcher.wake()
            if dispatcher.is_alive():
                await asyncio.to_thread(dispatcher.join, 30)
            platform.pipelines.wake()
            if pipelines.is_alive():
                await asyncio.to_thread(pipelines.join, 30)
            platform.deployments.wake()
            if deployments.is_alive():
                await asyncio.to_thread(deployments.join, 30)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(platform.bus.checkpoint)

    app.router.lifespan_context = lifespan
    return app


async def _checkpoints(platform: Platform) -> None:
    while True:
        await asyncio.sleep(platform.settings.audit_checkpoint_seconds)
        try:
            await asyncio.to_thread(platform.bus.checkpoint)
        except Exception:  # noqa: BLE001 - a failed round is retried on the next tick
            log.exception("signing an audit checkpoint failed")


class BackgroundServer:
    """uvicorn in a thread, for `charter demo` and the tests; ``url`` is known once it listens."""

    def __init__(self, platform: Platform, host: str, port: int) -> None:
        config = uvicorn.Config(server_app(platform), host=host, port=port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="charter-server", daemon=True)
        self.host = host

    def start(self, timeout: float = 30.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(platform: Platform) -> None:
    settings = platform.settings
    uvicorn.run(server_app(platform), host=settings.host, port=settings.port, log_level="info")
