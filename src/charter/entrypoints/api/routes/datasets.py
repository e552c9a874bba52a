"""Governed data in a data-governance account: datasets (registered by uploading the file),
versions, subscriptions and their decisions, reads by grant, and the lineage of reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep
from charter.entrypoints.api.routes.registry import _chunks

router = APIRouter(tags=["data"])
AccountName = Annotated[str, Path(max_length=63)]
DatasetName = Annotated[str, Path(max_length=63)]
SubscriptionId = Annotated[str, Path(max_length=32)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
DATASETS = "/accounts/{account}/data/datasets"
DATASET = DATASETS + "/{dataset}"
SUBSCRIPTIONS = "/accounts/{account}/data/subscriptions"


@router.post(DATASETS, response_model=m.DatasetVersionOut, status_code=201, openapi_extra={"requestBody": {
    "required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def register_dataset(
    account: AccountName, request: Request, caller: CallerDep,
    name: Annotated[str, Query(max_length=63, description="Required: the dataset; a new name creates it, "
                               "owned by you.")] = "",
    data_format: Annotated[str, Query(alias="format", max_length=16, description="csv or parquet.")] = "csv",
    description: Annotated[str, Query(max_length=4000, description="Kept when the dataset is created.")] = "",
) -> m.DatasetVersionOut:
    """Stream the file (the body) in; it is profiled and stored, then registered as the next version."""
    limit = request.app.state.platform.settings.max_artifact_bytes
    uploaded = await run_in_threadpool(caller, c.UploadDataset(account, name, data_format, _chunks(request), limit))
    version = await run_in_threadpool(caller, c.RegisterDatasetVersion(
        account, name, data_format, uploaded.blob.sha256, description))
    return convert.dataset_version(version)


@router.get(DATASETS, response_model=m.Page[m.DatasetOut])
def list_datasets(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.DatasetOut]:
    """The account's published catalogue: readable by every member of the organization."""
    return convert.page(caller(c.ListDatasets(account, page)), convert.dataset)


@router.get(DATASET, response_model=m.DatasetOut)
def get_dataset(account: AccountName, dataset: DatasetName, caller: CallerDep) -> m.DatasetOut:
    found, latest = caller(c.GetDataset(account, dataset))
    return convert.dataset(found, latest)


@router.get(DATASET + "/versions", response_model=m.Page[m.DatasetVersionOut])
def list_versions(account: AccountName, dataset: DatasetName, caller: CallerDep,
                  page: PageDep) -> m.Page[m.DatasetVersionOut]:
    return convert.page(caller(c.ListDatasetVersions(account, dataset, page)), convert.dataset_version)


@router.get(DATASET + "/versions/latest", response_model=m.DatasetVersionOut)
def get_latest_version(account: AccountName, dataset: DatasetName, caller: CallerDep) -> m.DatasetVersionOut:
    return convert.dataset_version(caller(c.GetDatasetVersion(account, dataset)))


@router.get(DATASET + "/versions/{version}", response_model=m.DatasetVersionOut)
def get_version(account: AccountName, dataset: DatasetName, version: Version,
                caller: CallerDep) -> m.DatasetVersionOut:
    return convert.dataset_version(caller(c.GetDatasetVersion(account, dataset, version)))


@router.get(DATASET + "/data", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes"}})
def read_dataset(
    account: AccountName, dataset: DatasetName, caller: CallerDep,
    for_account: Annotated[str, Query(max_length=63, description="Required: the account you read for; you "
                                      "hold a role there, and an active grant admits it.")] = "",
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Default: the latest.")] = None,
    run: Annotated[str | None, Query(max_length=200, description="The pipeline run reading it.")] = None,
    project: Annotated[str | None, Query(max_length=63)] = None,
) -> StreamingResponse:
    """A version's bytes; the read is audited and recorded as lineage before the first byte."""
    got = caller(c.ReadDataset(account, dataset, for_account, version, run, project))
    return StreamingResponse(got.chunks, media_type="application/octet-stream", headers={
        "content-length": str(got.version.size), "etag": f'"{got.version.sha256}"',
        "x-charter-dataset-version": str(got.version.version), "x-charter-read-id": got.read.id})


@router.get(DATASET + "/reads", response_model=m.Page[m.DatasetReadOut])
def list_reads(account: AccountName, dataset: DatasetName, caller: CallerDep,
               page: PageDep) -> m.Page[m.DatasetReadOut]:
    """Lineage: who read which version, for which account and run."""
    return convert.page(caller(c.ListDatasetReads(account, dataset, page)), convert.dataset_read)


@router.post(DATASET + "/subscriptions", response_model=m.SubscriptionOut, status_code=201)
def subscribe(account: AccountName, dataset: DatasetName, body: m.SubscriptionCreate,
              caller: CallerDep) -> m.SubscriptionOut:
    sub = caller(c.Subscribe(account, dataset, body.subscriber, body.reason, body.project))
    return convert.subscription(sub, caller.now)


@router.get(SUBSCRIPTIONS, response_model=m.Page[m.SubscriptionOut])
def list_subscriptions(account: AccountName, caller: CallerDep, page: PageDep,
                       status: Annotated[str | None, Query(max_length=16)] = None,
                       dataset: Annotated[str | None, Query(max_length=63)] = None) -> m.Page[m.SubscriptionOut]:
    """A data-governance account's: every request to its datasets; any other account's: its own."""
    now = caller.now
    return convert.page(caller(c.ListSubscriptions(account, status, dataset, page)),
                        lambda s: convert.subscription(s, now))


@router.get(SUBSCRIPTIONS + "/{subscription_id}", response_model=m.SubscriptionOut)
def get_subscription(account: AccountName, subscription_id: SubscriptionId, caller: CallerDep) -> m.SubscriptionOut:
    return convert.subscription(caller(c.GetSubscription(account, subscription_id)), caller.now)


def _decide(caller: CallerDep, account: str, subscription_id: str, status: str,
            body: m.SubscriptionDecisionIn) -> m.SubscriptionOut:
    sub = caller(c.DecideSubscription(account, subscription_id, status, body.comment, body.expires_in_seconds))
    return convert.subscription(sub, caller.now)


@router.post(SUBSCRIPTIONS + "/{subscription_id}/approve", response_model=m.SubscriptionOut)
def approve_subscription(account: AccountName, subscription_id: SubscriptionId, body: m.SubscriptionDecisionIn,
                         caller: CallerDep) -> m.SubscriptionOut:
    """The dataset's owner grants the subscriber account (or project) reads, optionally until an expiry."""
    return _decide(caller, account, subscription_id, "Approved", body)


@router.post(SUBSCRIPTIONS + "/{subscription_id}/reject", response_model=m.SubscriptionOut)
def reject_subscription(account: AccountName, subscription_id: SubscriptionId, body: m.SubscriptionDecisionIn,
                        caller: CallerDep) -> m.SubscriptionOut:
    return _decide(caller, account, subscription_id, "Rejected", body)


@router.post(SUBSCRIPTIONS + "/{subscription_id}/revoke", response_model=m.SubscriptionOut)
def revoke_subscription(account: AccountName, subscription_id: SubscriptionId, body: m.SubscriptionDecisionIn,
                        caller: CallerDep) -> m.SubscriptionOut:
    return _decide(caller, account, subscription_id, "Revoked", body)
