"""The model registry of each account: groups, artifacts, packages and approval decisions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import anyio.from_thread
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep
from charter.entrypoints.api.fast import in_thread, json_response

router = APIRouter(tags=["registry"])
AccountName = Annotated[str, Path(max_length=63)]
GroupName = Annotated[str, Path(max_length=63)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
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


@router.post(PACKAGES, response_model=m.PackageOut, status_code=201)
async def register_package(account: AccountName, group: GroupName, body: m.PackageCreate,
                           caller: CallerDep) -> Response:
    signature = body.signature.model_dump() if body.signature else None
    lineage = body.lineage
    package = await in_thread(caller, c.RegisterModelPackage(
        account, group, body.format, tuple(c.ArtifactRef(a.path, a.sha256) for a in body.artifacts),
        signature=signature, metrics=tuple(body.metrics.items()), sample_payload=body.sample_payload,
        description=body.description, tags=tuple(body.tags.items()), run=lineage.run,
        run_started_by=lineage.run_started_by, datasets=tuple(lineage.datasets),
        product_version=lineage.product_version, parameters=tuple(lineage.parameters.items())))
    return json_response(convert.package_document(package), 201)


@router.get(PACKAGES, response_model=m.Page[m.PackageOut])
async def list_packages(account: AccountName, group: GroupName, caller: CallerDep, page: PageDep,
                        status: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    found = await in_thread(caller, c.ListModelPackages(account, group, status, page))
    return json_response(convert.page_document(found, convert.package_document))


@router.get(PACKAGES + "/latest", response_model=m.PackageOut)
async def get_latest_package(account: AccountName, group: GroupName, caller: CallerDep,
                             status: Annotated[str, Query(max_length=32)] = "Approved") -> Response:
    """The newest version in a status: by default the latest approved one, as deployments use it."""
    package = await in_thread(caller, c.GetLatestModelPackage(account, group, status))
    return json_response(convert.package_document(package))


@router.get(PACKAGES + "/{version}", response_model=m.PackageOut)
async def get_package(account: AccountName, group: GroupName, version: Version, caller: CallerDep) -> Response:
    package = await in_thread(caller, c.GetModelPackage(account, group, version))
    return json_response(convert.package_document(package))


@router.post(PACKAGES + "/{version}/approve", response_model=m.PackageOut)
async def approve_package(account: AccountName, group: GroupName, version: Version, body: m.DecisionIn,
                          caller: CallerDep) -> Response:
    package = await in_thread(caller, c.DecideModelPackage(account, group, version, "Approved", body.comment))
    return json_response(convert.package_document(package))


@router.post(PACKAGES + "/{version}/reject", response_model=m.PackageOut)
async def reject_package(account: AccountName, group: GroupName, version: Version, body: m.DecisionIn,
                         caller: CallerDep) -> Response:
    package = await in_thread(caller, c.DecideModelPackage(account, group, version, "Rejected", body.comment))
    return json_response(convert.package_document(package))
