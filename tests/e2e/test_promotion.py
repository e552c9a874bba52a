"""The article's promotion through the real server: approve in dev, and the central registry has
the package — artifacts copied and verified, everything carried, a model card — with no one
copying anything by hand."""

from __future__ import annotations

import hashlib
import time
import uuid

from charter.client import models as m
from charter.client.client import Client
from tests.models import skops_model

CENTRAL = "ml-shared-services"


def wait_for_central(client: Client, group: str, version: int = 1, timeout: float = 20.0) -> m.PackageOut:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.package(CENTRAL, group, version)
        except Exception:  # noqa: BLE001 - not there yet (NotFound, or the group is still missing)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def approved_dev_package(personas: dict[str, Client], extra: bytes = b"") -> tuple[str, m.PackageOut]:
    lena, sam = personas["lena"], personas["sam"]
    group = f"churn-{uuid.uuid4().hex[:6]}"
    lena.create_group("ml-dev", group, description="churn model", tags={"team": "growth"},
                      readers=[CENTRAL, "ou:deployments"])
    model = sam.upload_artifact("ml-dev", skops_model())
    artifacts = [m.ArtifactIn(path="model.skops", sha256=model.sha256)]
    if extra:
        artifacts.append(m.ArtifactIn(path="data/vocabulary.bin", sha256=sam.upload_artifact("ml-dev", extra).sha256))
    sam.register_package("ml-dev", group, m.PackageCreate(
        format="skops", artifacts=artifacts, metrics={"auc": 0.91, "accuracy": 0.88},
        signature=m.SignatureIn(inputs=[m.ColumnIn(name="age", dtype="float64")]),
        sample_payload={"instances": [[41.0]]}, description="gradient boosting", tags={"algo": "gb"},
        lineage=m.LineageIn(run="run-7", run_started_by="sam", datasets=["bank-marketing@1"])))
    return group, lena.approve("ml-dev", group, 1, "beats v0")


def test_an_approved_dev_package_reaches_the_central_registry_whole(personas: dict[str, Client]) -> None:
    extra = hashlib.sha256(b"vocabulary").digest() * 40_000  # 1.28 MB, a second artifact
    group, source = approved_dev_package(personas, extra)
    mei = personas["mei"]
    central = wait_for_central(mei, f"{group}-ml-dev")
    assert central.status == "PendingManualApproval"
    assert central.origin == f"crn:charter:ml-dev:registry:model-package/{group}/1"
    assert [(a.path, a.size, a.sha256) for a in central.artifacts] == [
        (a.path, a.size, a.sha256) for a in source.artifacts]
    assert (central.metrics, central.sample_payload, central.description, central.tags) == (
        source.metrics, source.sample_payload, source.description, source.tags)
    assert central.lineage == source.lineage and central.signature == source.signature
    for artifact in central.artifacts:
        data = b"".join(mei.download_artifact(CENTRAL, artifact.sha256))
        assert hashlib.sha256(data).hexdigest() == artifact.sha256
    card = mei.model_card(CENTRAL, f"{group}-ml-dev")
    assert (card.status, card.latest_version) == ("Draft", 1)
    assert card.package == f"crn:charter:{CENTRAL}:registry:model-package/{group}-ml-dev/1"
    assert card.evaluation is not None and card.training is not None


def test_the_central_package_is_approved_by_an_ml_engineer(personas: dict[str, Client]) -> None:
    group, _ = approved_dev_package(personas)
    wait_for_central(personas["mei"], f"{group}-ml-dev")
    approved = personas["mei"].approve(CENTRAL, f"{group}-ml-dev", 1, "ok for test")
    assert approved.status == "Approved"


def test_the_promotion_is_in_the_audit_trail_as_the_promotion_principal(personas: dict[str, Client]) -> None:
    group, source = approved_dev_package(personas)
    wait_for_central(personas["mei"], f"{group}-ml-dev")
    records = list(personas["arthur"].audit_records(actor="promotion-bot",
                                                    action="registry:PromoteModelPackage"))
    promoted = [r for r in records if r.details.get("source") == f"crn:charter:ml-dev:registry:model-package/{group}/1"]
    assert {r.details.get("step") for r in promoted} == {"copy-artifacts", None}
    assert personas["arthur"].audit_verify().ok
