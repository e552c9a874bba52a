"""The registry through the real server: streamed uploads, registration, separation of duties."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from charter.client import models as m
from charter.client.client import Client
from charter.errors import NotFound, PermissionDenied, ValidationError
from tests.models import skops_model


def _group(personas: dict[str, Client]) -> str:
    name = f"churn-{uuid.uuid4().hex[:8]}"
    personas["lena"].create_group("ml-dev", name, description="churn model", tags={"team": "growth"})
    return name


def _register(client: Client, group: str, **lineage: str) -> m.PackageOut:
    blob = client.upload_artifact("ml-dev", skops_model())
    return client.register_package("ml-dev", group, m.PackageCreate(
        format="skops", artifacts=[m.ArtifactIn(path="model.skops", sha256=blob.sha256)],
        metrics={"auc": 0.91}, lineage=m.LineageIn(**lineage)))


def test_an_upload_is_named_by_the_digest_the_server_computes_and_reads_back_whole(
        personas: dict[str, Client]) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, above the JSON body limit
    blob = personas["sam"].upload_artifact("ml-dev", data)
    assert (blob.sha256, blob.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert b"".join(personas["lena"].download_artifact("ml-dev", blob.sha256)) == data


def test_a_registered_package_waits_for_the_lead_data_scientist(personas: dict[str, Client]) -> None:
    group = _group(personas)
    package = _register(personas["sam"], group, run="run-1")
    assert (package.version, package.status, package.lineage.registered_by) == (1, "PendingManualApproval", "sam")
    approved = personas["lena"].approve("ml-dev", group, 1, "beats v0")
    assert approved.status == "Approved" and approved.history[-1].actor == "lena"
    assert approved.history[-1].digests == [a.sha256 for a in package.artifacts]


def test_self_approval_is_refused_naming_the_policy_and_audited(personas: dict[str, Client]) -> None:
    group = _group(personas)
    _register(personas["lena"], group)
    with pytest.raises(PermissionDenied) as denied:
        personas["lena"].approve("ml-dev", group, 1)
    assert denied.value.details["policy"] == "no-self-approval"
    records = list(personas["arthur"].audit_records(actor="lena", action="registry:ApproveModelPackage"))
    assert records and records[-1].outcome == "denied" and records[-1].policy == "no-self-approval"


def test_a_data_scientist_cannot_approve(personas: dict[str, Client]) -> None:
    group = _group(personas)
    _register(personas["lena"], group)
    with pytest.raises(PermissionDenied):
        personas["sam"].approve("ml-dev", group, 1)


def test_a_pickle_format_is_refused(personas: dict[str, Client]) -> None:
    group = _group(personas)
    blob = personas["sam"].upload_artifact("ml-dev", b"\x80\x04K\x01.")
    with pytest.raises(ValidationError, match="pickle"):
        personas["sam"].register_package("ml-dev", group, m.PackageCreate(
            format="pickle", artifacts=[m.ArtifactIn(path="model.pkl", sha256=blob.sha256)]))
    assert list(personas["sam"].packages("ml-dev", group)) == []


def test_other_accounts_cannot_read_a_group_without_its_resource_policy(personas: dict[str, Client]) -> None:
    group = _group(personas)
    with pytest.raises(PermissionDenied):
        personas["mei"].group("ml-dev", group)


def test_an_unknown_version_is_not_found(personas: dict[str, Client]) -> None:
    group = _group(personas)
    with pytest.raises(NotFound):
        personas["lena"].package("ml-dev", group, 99)


def test_the_latest_approved_version_is_found(personas: dict[str, Client]) -> None:
    group = _group(personas)
    for _ in range(3):
        _register(personas["sam"], group)
    personas["lena"].approve("ml-dev", group, 1)
    personas["lena"].approve("ml-dev", group, 2)
    assert personas["sam"].latest_package("ml-dev", group).version == 2
    assert personas["sam"].latest_package("ml-dev", group, "PendingManualApproval").version == 3
    with pytest.raises(NotFound):
        personas["sam"].latest_package("ml-dev", group, "Rejected")
