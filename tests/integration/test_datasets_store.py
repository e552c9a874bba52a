"""The datasets repository on each backend: round trips, gap-free versions, subscriptions, reads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from charter.bootstrap import Platform
from charter.domain.datasets import (
    Column,
    DataFormat,
    Dataset,
    DatasetRead,
    DatasetVersion,
    Subscription,
    SubscriptionStatus,
)
from tests.integration.conftest import Org

T = datetime(2026, 1, 1, tzinfo=UTC)
GOV = "data-governance"
DATASET = Dataset(GOV, "bank-marketing", "diego", T, "bank data", (("pii", "no"),))


def _version(number: int) -> DatasetVersion:
    return DatasetVersion(GOV, "bank-marketing", number, DataFormat.CSV, "b" * 64, 5_000_000_000,
                          (Column("age", "int64"), Column("balance", "float64"), Column("y", "bool")),
                          3_000_000_000, "diego", T)


def _with_dataset(platform: Platform) -> None:
    with platform.bus.uow_factory() as uow:
        uow.datasets.add_dataset(DATASET)
        uow.commit()


def test_a_dataset_and_its_version_round_trip_with_their_schema(org: Org, platform: Platform) -> None:
    _with_dataset(platform)
    with platform.bus.uow_factory() as uow:
        uow.datasets.add_version(_version(uow.datasets.allocate_version(GOV, "bank-marketing")))
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.datasets.get_dataset(GOV, "bank-marketing") == DATASET
        assert uow.datasets.get_version(GOV, "bank-marketing", 1) == _version(1)
        assert uow.datasets.latest_version(GOV, "bank-marketing") == _version(1)
        assert uow.datasets.list_datasets(GOV, None, 10) == [DATASET]


def test_dataset_versions_stay_gap_free_under_concurrent_registrations(org: Org, platform: Platform) -> None:
    _with_dataset(platform)
    errors: list[BaseException] = []

    def register(fail: bool) -> None:
        try:
            with platform.bus.uow_factory() as uow:
                uow.datasets.add_version(_version(uow.datasets.allocate_version(GOV, "bank-marketing")))
                if not fail:
                    uow.commit()  # a rolled-back registration gives its number back
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=register, args=(i % 4 == 3,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with platform.bus.uow_factory(readonly=True) as uow:
        assert [x.version for x in uow.datasets.list_versions(GOV, "bank-marketing", None, 100)] == list(range(1, 16))
        assert [x.version for x in uow.datasets.list_versions(GOV, "bank-marketing", 13, 5)] == [14, 15]


def test_a_subscription_round_trips_through_its_decisions(org: Org, platform: Platform) -> None:
    _with_dataset(platform)
    sub = Subscription("0" * 31 + "1", GOV, "bank-marketing", "ml-dev", "sam", "churn model", T, "churn")
    other = Subscription("0" * 31 + "2", GOV, "bank-marketing", "ml-shared-services", "mei", "tests", T)
    approved = sub.transition(SubscriptionStatus.APPROVED, "diego", "ok", T, expires_at=T + timedelta(days=30))
    with platform.bus.uow_factory() as uow:
        uow.datasets.add_subscription(sub)
        uow.datasets.add_subscription(other)
        uow.datasets.save_subscription(approved)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.datasets.get_subscription(sub.id) == approved
        assert uow.datasets.subscriptions_to(GOV, "bank-marketing", "ml-dev") == [approved]
        assert [x.id for x in uow.datasets.list_subscriptions(account=GOV)] == [sub.id, other.id]
        assert uow.datasets.list_subscriptions(subscriber="ml-shared-services") == [other]
        assert uow.datasets.list_subscriptions(account=GOV, status=SubscriptionStatus.PENDING) == [other]
        assert uow.datasets.list_subscriptions(account=GOV, after=sub.id) == [other]


def test_reads_are_kept_in_order_as_lineage(org: Org, platform: Platform) -> None:
    _with_dataset(platform)
    reads = [DatasetRead(f"{i:032x}", GOV, "bank-marketing", 1, "sam", "ml-dev", T + timedelta(seconds=i),
                         "churn", f"run-{i}", "f" * 32) for i in range(3)]
    with platform.bus.uow_factory() as uow:
        uow.datasets.add_version(_version(uow.datasets.allocate_version(GOV, "bank-marketing")))
        for read in reversed(reads):
            uow.datasets.add_read(read)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.datasets.list_reads(GOV, "bank-marketing", None, 10) == reads
        assert uow.datasets.list_reads(GOV, "bank-marketing", reads[0].id, 1) == [reads[1]]
