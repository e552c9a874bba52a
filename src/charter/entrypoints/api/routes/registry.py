"""The model registry of each account: groups, artifacts, packages and approval decisions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

import anyio.from_thread
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from charter.client import models as m
from charter.domain import commands as c
from charter.domain.registry import ModelPackage
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CURSOR_MAX_LENGTH, CallerDep, PageDep, page_request
from charter.entrypoints.api.fast import in_thread, json_response
from charter.entrypoints.api.fastlane import Call, Handler, Lane, path_pattern
from charter.services.handlers.registry import quick_to_register
from charter.services.ports import Page

router = APIRouter(tags=["registry"])
AccountName = Annotated[str, Path(max_length=63)]
GroupName = Annotated[str, Path(max_length=63)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
STATUS_MAX_LENGTH = 32
GROUPS = "/accounts/{account}/registry/groups"
PACKAGES = GROUPS + "/{group}/packages"
ARTIFACTS = "/accounts/{account}/artifacts"


@router.post(GROUPS, response_model=m.GroupOut, status_code=201)
def create_group(account: AccountName, body: m.GroupCreate, caller: CallerDep) -> m.GroupOut:
    return convert.group(caller(c.CreateModelPackageGroup(
        account, body.name, body.description, tuple(body.tags.items()), tuple(body.readers))))


@router.get(GROUPS, response_model=m.Page[m.GroupOut])
def list_groups(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.GroupOut]:
    return convert.page(caller(c.ListModelPackageGroups(account, page)), convert.group)


@router.get(GROUPS + "/{group}", response_model=m.GroupOut)
def get_group(account: AccountName, group: GroupName, caller: CallerDep) -> m.GroupOut:
    return convert.group(caller(c.GetModelPackageGroup(account, group)))


def _chunks(request: Request) -> Iterator[bytes]:
    """The request body as a plain iterator, read from a worker thread as the store consumes it."""
    stream = request.stream()
    while True:
        try:
            chunk = anyio.from_thread.run(stream.__anext__)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk


@router.post(ARTIFACTS, response_model=m.BlobOut, status_code=201, openapi_extra={"requestBody": {
    "required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_artifact(
    account: AccountName, request: Request, caller: CallerDep,
    model_format: Annotated[str | None, Query(alias="format", max_length=32, description=(
        "skops or onnx: the file is a model of this format; it is checked now, off the write path, "
        "so that registering it is quick."))] = None,
) -> m.BlobOut:
    """Stream a file into the account's artifact store; the server names it by its SHA-256."""
    limit = request.app.state.platform.settings.max_artifact_bytes
    info = await run_in_threadpool(caller, c.UploadArtifact(account, _chunks(request), limit, model_format))
    return convert.blob(info)


@router.get(ARTIFACTS + "/{sha256}", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The bytes"}})
def download_artifact(account: AccountName, sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
                      caller: CallerDep) -> StreamingResponse:
    download = caller(c.GetArtifact(account, sha256))
    return StreamingResponse(download.chunks, media_type="application/octet-stream", headers={
        "content-length": str(download.info.size), "etag": f'"{download.info.sha256}"'})


def _register(account: str, group: str, body: m.PackageCreate) -> c.RegisterModelPackage:
    signature = body.signature.model_dump() if body.signature else None
    lineage = body.lineage
    return c.RegisterModelPackage(
        account, group, body.format, tuple(c.ArtifactRef(a.path, a.sha256) for a in body.artifacts),
        signature=signature, metrics=tuple(body.metrics.items()), sample_payload=body.sample_payload,
        description=body.description, tags=tuple(body.tags.items()), run=lineage.run,
        run_started_by=lineage.run_started_by, datasets=tuple(lineage.datasets),
        product_version=lineage.product_version, parameters=tuple(lineage.parameters.items()))


def _package_response(package: ModelPackage, status_code: int = 200) -> Response:
    return json_response(convert.package_document(package), status_code)


def _page_response(found: Page[ModelPackage]) -> Response:
    return json_response(convert.page_document(found, convert.package_document))


@router.post(PACKAGES, response_model=m.PackageOut, status_code=201)
async def register_package(account: AccountName, group: GroupName, body: m.PackageCreate,
                           caller: CallerDep) -> Response:
    return _package_response(await in_thread(caller, _register(account, group, body)), 201)


@router.get(PACKAGES, response_model=m.Page[m.PackageOut])
async def list_packages(account: AccountName, group: GroupName, caller: CallerDep, page: PageDep,
                        status: Annotated[str | None, Query(max_length=STATUS_MAX_LENGTH)] = None) -> Response:
    return _page_response(await in_thread(caller, c.ListModelPackages(account, group, status, page)))


@router.get(PACKAGES + "/latest", response_model=m.PackageOut)
async def get_latest_package(account: AccountName, group: GroupName, caller: CallerDep,
                             status: Annotated[str, Query(max_length=STATUS_MAX_LENGTH)] = "Approved") -> Response:
    """The newest version in a status: by default the latest approved one, as deployments use it."""
    return _package_response(await in_thread(caller, c.GetLatestModelPackage(account, group, status)))


@router.get(PACKAGES + "/{version}", response_model=m.PackageOut)
async def get_package(account: AccountName, group: GroupName, version: Version, caller: CallerDep) -> Response:
    return _package_response(await in_thread(caller, c.GetModelPackage(account, group, version)))


@router.post(PACKAGES + "/{version}/approve", response_model=m.PackageOut)
async def approve_package(account: AccountName, group: GroupName, version: Version, body: m.DecisionIn,
                          caller: CallerDep) -> Response:
    decide = c.DecideModelPackage(account, group, version, "Approved", body.comment)
    return _package_response(await in_thread(caller, decide))


@router.post(PACKAGES + "/{version}/reject", response_model=m.PackageOut)
async def reject_package(account: AccountName, group: GroupName, version: Version, body: m.DecisionIn,
                         caller: CallerDep) -> Response:
    decide = c.DecideModelPackage(account, group, version, "Rejected", body.comment)
    return _package_response(await in_thread(caller, decide))


# --- the same routes' lanes in front of the router (entrypoints/api/fastlane.py) ---------------

_DIGITS = re.compile(r"[0-9]{1,9}")

async def _register_lane(call: Call) -> Response | None:
    body = call.model(m.PackageCreate)
    if body is None:
        return None
    command = _register(call.params[0], call.params[1], body)
    # Short on a file store once its model files were inspected at upload (as when uploaded here).
    short = quick_to_register(call.platform.bus.artifacts, command)
    return _package_response(await call.handle(command, short=short), 201)


def _decide_lane(status: str) -> Handler:
    async def decide(call: Call) -> Response | None:
        body, version = call.model(m.DecisionIn), call.number(2)
        if body is None or version is None:
            return None
        return _package_response(await call.handle(
            c.DecideModelPackage(call.params[0], call.params[1], version, status, body.comment)))
    return decide


async def _get_lane(call: Call) -> Response | None:
    version = call.number(2)
    if version is None or call.query() is None:
        return None
    return _package_response(await call.handle(c.GetModelPackage(call.params[0], call.params[1], version)))


async def _latest_lane(call: Call) -> Response | None:
    query = call.query("status")
    if query is None or len(query.get("status", "")) > STATUS_MAX_LENGTH:
        return None
    latest = c.GetLatestModelPackage(call.params[0], call.params[1], query.get("status", "Approved"))
    return _package_response(await call.handle(latest))


async def _list_lane(call: Call) -> Response | None:
    query = call.query("limit", "cursor", "status")
    if query is None:
        return None
    limit, cursor, status = query.get("limit"), query.get("cursor"), query.get("status")
    # What the route's parameters admit, in their plainest spelling; "+5", " 5" or "5.0" the router
    # reads for itself.
    if ((limit is not None and not (_DIGITS.fullmatch(limit) and int(limit) >= 1))
            or len(cursor or "") > CURSOR_MAX_LENGTH or len(status or "") > STATUS_MAX_LENGTH):
        return None
    page = page_request(call.platform.settings, int(limit) if limit is not None else None, cursor)
    return _page_response(await call.handle(c.ListModelPackages(call.params[0], call.params[1], status, page)))


LANES = (
    Lane("POST", path_pattern(PACKAGES), _register_lane),
    Lane("POST", path_pattern(PACKAGES + "/{version}/approve", ["version"]), _decide_lane("Approved")),
    Lane("POST", path_pattern(PACKAGES + "/{version}/reject", ["version"]), _decide_lane("Rejected")),
    Lane("GET", path_pattern(PACKAGES), _list_lane),
    Lane("GET", path_pattern(PACKAGES + "/latest"), _latest_lane),
    Lane("GET", path_pattern(PACKAGES + "/{version}", ["version"]), _get_lane),
)
