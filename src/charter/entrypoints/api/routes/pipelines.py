"""Pipelines of each account: definitions with their code, runs, their steps and logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from charter.client import models as m
from charter.domain import commands as c
from charter.domain.pipelines import StepStatus
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep
from charter.entrypoints.api.routes.registry import _chunks

router = APIRouter(tags=["pipelines"])
AccountName = Annotated[str, Path(max_length=63)]
Name = Annotated[str, Path(max_length=63)]
RunId = Annotated[str, Path(max_length=64)]
PIPELINES = "/accounts/{account}/pipelines"
PIPELINE = PIPELINES + "/{name}"
RUN = "/accounts/{account}/pipeline-runs/{run_id}"
_LIVE_CHUNK = 64 * 1024


@router.post(PIPELINE, response_model=m.PipelineOut, status_code=201, openapi_extra={
    "requestBody": {"required": True, "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}}})
async def create_pipeline(account: AccountName, name: Name, request: Request, caller: CallerDep) -> m.PipelineOut:
    """Create a pipeline, or give it its next version: the body is a tar.gz of the template's code
    with the definition at ``pipeline.yaml``."""
    limit = request.app.state.platform.settings.max_request_bytes
    created = await run_in_threadpool(caller, c.CreatePipelineFromArchive(account, name, _chunks(request), limit))
    return convert.pipeline(created)


@router.get(PIPELINES, response_model=m.Page[m.PipelineOut])
def list_pipelines(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.PipelineOut]:
    return convert.page(caller(c.ListPipelines(account, page)), convert.pipeline)


@router.get(PIPELINE, response_model=m.PipelineOut)
def get_pipeline(account: AccountName, name: Name, caller: CallerDep) -> m.PipelineOut:
    return convert.pipeline(caller(c.GetPipeline(account, name)))


@router.post(PIPELINE + "/runs", response_model=m.PipelineRunOut, status_code=201)
def start_run(account: AccountName, name: Name, body: m.PipelineRunStart, caller: CallerDep) -> m.PipelineRunOut:
    """Start a run with these parameters (the defaults for the rest); bad ones are refused here."""
    return convert.pipeline_run(caller(c.StartPipelineRun(account, name, dict(body.parameters))))


@router.get(PIPELINE + "/runs", response_model=m.Page[m.PipelineRunOut])
def list_runs(account: AccountName, name: Name, caller: CallerDep, page: PageDep) -> m.Page[m.PipelineRunOut]:
    return convert.page(caller(c.ListPipelineRuns(account, name, page)), convert.pipeline_run)


@router.get(RUN, response_model=m.PipelineRunOut)
def get_run(account: AccountName, run_id: RunId, caller: CallerDep) -> m.PipelineRunOut:
    return convert.pipeline_run(caller(c.GetPipelineRun(account, run_id)))


@router.post(RUN + "/cancel", response_model=m.PipelineRunOut)
def cancel_run(account: AccountName, run_id: RunId, caller: CallerDep) -> m.PipelineRunOut:
    return convert.pipeline_run(caller(c.CancelPipelineRun(account, run_id)))


@router.get(RUN + "/steps/{step}/log", response_class=StreamingResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "The step's log"}})
def get_log(account: AccountName, run_id: RunId, step: Annotated[str, Path(max_length=63)], request: Request,
            caller: CallerDep,
            offset: Annotated[int, Query(ge=0, description="Skip this many bytes (to follow a log).")] = 0,
            ) -> StreamingResponse:
    """A step's log: the stored one once it ended, the live one while it runs on this server.
    ``X-Charter-Step-Status`` tells the step's status, so a follower knows when to stop."""
    found = caller(c.GetStepLog(account, run_id, step))
    chunks: Iterator[bytes] = found.chunks
    if found.state.status is StepStatus.RUNNING:
        live = request.app.state.platform.pipelines.live_log(found.run, step)
        chunks = _file(live) if live is not None else iter(())
    return StreamingResponse(_skip(chunks, offset), media_type="text/plain; charset=utf-8",
                             headers={"x-charter-step-status": str(found.state.status)})


def _file(path: object) -> Iterator[bytes]:
    with open(str(path), "rb") as f:
        while chunk := f.read(_LIVE_CHUNK):
            yield chunk


def _skip(chunks: Iterator[bytes], offset: int) -> Iterator[bytes]:
    for chunk in chunks:
        if offset >= len(chunk):
            offset -= len(chunk)
            continue
        yield chunk[offset:]
        offset = 0
