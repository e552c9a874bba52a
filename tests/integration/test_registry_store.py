"""The registry's repository on each backend: round trips, gap-free versions under concurrency."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from charter.bootstrap import Platform
from charter.domain.registry import (
    ApprovalStatus,
    Artifact,
    ColumnSpec,
    Lineage,
    ModelFormat,
    ModelPackage,
    ModelPackageGroup,
    Signature,
)
from tests.integration.conftest import Org

T = datetime(2026, 1, 1, tzinfo=UTC)


def _package(version: int, digest: str = "a" * 64) -> ModelPackage:
    return ModelPackage(
        "ml-dev", "churn", version, ModelFormat.SKOPS, (Artifact("model.skops", 1234, digest),),
        Lineage("sam", run="run-1", run_started_by="lena", datasets=("crn:charter:data-governance:data:dataset/bank/1",),
                product_version="train-from-dataset/1", parameters=(("max_depth", "6"),)),
        T, signature=Signature((ColumnSpec("age", "int64"),), (ColumnSpec("y", "int64"),)),
        metrics=(("auc", 0.91), ("accuracy", 0.88)), sample_payload={"instances": [[42]]},
        description="gradient boosting", tags=(("team", "growth"),),
    )


def _with_group(platform: Platform) -> None:
    with platform.bus.uow_factory() as uow:
        uow.registry.add_group(ModelPackageGroup("ml-dev", "churn", "churn model",
                                                 (("cost-centre", "42"),), ("ml-test", "ou:deployments")),
                               T, "lena")
        uow.commit()


def test_a_package_round_trips_with_everything_a_reviewer_needs(org: Org, platform: Platform) -> None:
    _with_group(platform)
    with platform.bus.uow_factory() as uow:
        version = uow.registry.allocate_version("ml-dev", "churn")
        uow.registry.add_package(_package(version))
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.registry.get_package("ml-dev", "churn", 1) == _package(1)
        assert uow.registry.get_group("ml-dev", "churn") == ModelPackageGroup(
            "ml-dev", "churn", "churn model", (("cost-centre", "42"),), ("ml-test", "ou:deployments"))


def test_a_decision_is_stored_with_its_history(org: Org, platform: Platform) -> None:
    _with_group(platform)
    with platform.bus.uow_factory() as uow:
        uow.registry.add_package(_package(uow.registry.allocate_version("ml-dev", "churn")))
        uow.commit()
    with platform.bus.uow_factory() as uow:
        package = uow.registry.get_package("ml-dev", "churn", 1)
        assert package is not None
        uow.registry.save_decision(package.decide(ApprovalStatus.APPROVED, "lena", "beats v1", T))
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        stored = uow.registry.get_package("ml-dev", "churn", 1)
        assert stored is not None and stored.status is ApprovalStatus.APPROVED
        assert stored.approval is not None and stored.approval.comment == "beats v1"


def test_versions_stay_unique_and_gap_free_under_32_concurrent_registrations(org: Org, platform: Platform) -> None:
    _with_group(platform)
    errors: list[BaseException] = []

    def register(fail: bool) -> None:
        try:
            with platform.bus.uow_factory() as uow:
                version = uow.registry.allocate_version("ml-dev", "churn")
                uow.registry.add_package(_package(version))
                if not fail:
                    uow.commit()  # the failing ones roll back, and must give their number back
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=register, args=(i % 5 == 4,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with platform.bus.uow_factory(readonly=True) as uow:
        versions = [pkg.version for pkg in uow.registry.list_packages("ml-dev", "churn", None, 100)]
    assert versions == list(range(1, 33))


def test_the_latest_package_in_a_status_is_found(org: Org, platform: Platform) -> None:
    _with_group(platform)
    with platform.bus.uow_factory() as uow:
        for _ in range(5):
            version = uow.registry.allocate_version("ml-dev", "churn")
            package = _package(version)
            if version in (2, 4):
                package = package.decide(ApprovalStatus.APPROVED, "lena", "", T)
            uow.registry.add_package(package)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        latest = uow.registry.latest_package("ml-dev", "churn", ApprovalStatus.APPROVED)
        assert latest is not None and latest.version == 4
        assert [p.version for p in uow.registry.list_packages(
            "ml-dev", "churn", None, 10, ApprovalStatus.PENDING)] == [1, 3, 5]
        assert [p.version for p in uow.registry.list_packages("ml-dev", "churn", 2, 2)] == [3, 4]


def test_a_source_package_is_promoted_into_an_account_at_most_once(org: Org, platform: Platform) -> None:
    _with_group(platform)
    origin = "crn:charter:ml-other:registry:model-package/churn/7"
    promoted = dataclasses.replace(_package(1), origin=origin)
    with platform.bus.uow_factory() as uow:
        uow.registry.add_package(promoted)
        uow.registry.add_package(_package(2))  # packages registered here have no origin: no clash
        uow.registry.add_package(_package(3))
        uow.commit()
    with platform.bus.uow_factory() as uow:
        assert uow.registry.find_promoted("ml-dev", origin) == promoted
        assert uow.registry.find_promoted("ml-dev", origin.replace("/7", "/8")) is None
        with pytest.raises(IntegrityError):
            uow.registry.add_package(dataclasses.replace(_package(4), origin=origin))
