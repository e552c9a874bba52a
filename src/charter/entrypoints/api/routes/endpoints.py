"""Endpoints of each account: deploy (a new configuration revision, rolled out blue/green),
read, roll back, delete, list data-capture batches, and invoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from charter.client import models as m
from charter.domain import commands as c
from charter.domain.endpoints import Endpoint
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep, bearer_of, request_id
from charter.entrypoints.api.invocations import invoke_endpoint

router = APIRouter(tags=["endpoints"])
AccountName = Annotated[str, Path(max_length=63)]
Name = Annotated[str, Path(max_length=63)]
ENDPOINTS = "/accounts/{account}/endpoints"
ENDPOINT = ENDPOINTS + "/{name}"


def _out(request: Request, endpoint: Endpoint) -> m.EndpointOut:
    supervisor = request.app.state.platform.bus.endpoints
    workers = supervisor.status(endpoint.account, endpoint.name) if supervisor is not None else []
    return convert.endpoint(endpoint, workers)


@router.get(ENDPOINTS, response_model=m.Page[m.EndpointOut])
def list_endpoints(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.EndpointOut]:
    return convert.page(caller(c.ListEndpoints(account, page)), convert.endpoint)


@router.post(ENDPOINT, response_model=m.EndpointOut, status_code=202)
def deploy(account: AccountName, name: Name, body: m.EndpointDeploy, caller: CallerDep,
           request: Request) -> m.EndpointOut:
    """Create the endpoint, or give it a new configuration revision. The answer comes at once with
    the revision ``Updating``; it takes traffic once its workers are healthy (blue/green)."""
    variants = tuple(c.VariantSpec(v.package, v.weight, v.name) for v in body.variants)
    done = caller(c.DeployEndpoint(account, name, variants, body.replicas, body.capture_percent, body.reason))
    return _out(request, done)


@router.get(ENDPOINT, response_model=m.EndpointOut)
def get_endpoint(account: AccountName, name: Name, caller: CallerDep, request: Request) -> m.EndpointOut:
    """The endpoint with its revision history, status and this server's workers."""
    return _out(request, caller(c.GetEndpoint(account, name)))


@router.post(ENDPOINT + "/rollback", response_model=m.EndpointOut, status_code=202)
def rollback(account: AccountName, name: Name, body: m.EndpointChange, caller: CallerDep,
             request: Request) -> m.EndpointOut:
    """Go back to the configuration before the one that serves, as a new revision."""
    return _out(request, caller(c.RollbackEndpoint(account, name, body.reason)))


@router.delete(ENDPOINT, response_model=m.EndpointOut)
def delete(account: AccountName, name: Name, caller: CallerDep, request: Request,
           reason: Annotated[str, Query(max_length=2000)] = "") -> m.EndpointOut:
    return convert.endpoint(caller(c.DeleteEndpoint(account, name, reason)))


@router.get(ENDPOINT + "/captures", response_model=m.Page[m.CaptureOut])
def list_captures(account: AccountName, name: Name, caller: CallerDep, page: PageDep) -> m.Page[m.CaptureOut]:
    """Data-capture batches: JSON lines of request/response pairs in the account's artifact store
    (read them with GET /accounts/{account}/artifacts/{sha256})."""
    return convert.page(caller(c.ListEndpointCaptures(account, name, page)), convert.capture)


@router.post(ENDPOINT + "/invocations", response_model=m.InvocationOut, openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": '{"instances": [[...], ...]} or {"inputs": {"column": [...]}}'}}}}})
async def invocations(account: AccountName, name: Name, request: Request) -> Response:
    """Predictions from the endpoint's serving revision, as the caller (who needs a role in the
    endpoint's account). The body is validated against the package's input signature. (Served by
    the hot path in front of the router, ``entrypoints.api.invocations``, with the same code.)"""
    body = await invoke_endpoint(request.app.state.platform, account, name, await request.body(),
                                 bearer_of(request.headers.get("authorization", "")), request_id(request))
    return Response(body, media_type="application/json")
