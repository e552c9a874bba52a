"""Governed data on the in-memory fakes: registration, subscriptions, grants and reads."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from charter.domain import commands as c
from charter.domain.audit import Outcome
from charter.domain.datasets import DatasetVersion, Subscription, SubscriptionStatus
from charter.domain.identity import Identity
from charter.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationError
from charter.services.handlers.datasets import DatasetDownload
from tests.unit.conftest import EXAMPLE, World

GOV = "data-governance"
CSV = b"age,balance,y\n30,1.5,true\n41,2,false\n"
LIMIT = 10 * 1024 * 1024


def _register(world: World, who: Identity, body: bytes = CSV, name: str = "bank-marketing",
              fmt: str = "csv") -> DatasetVersion:
    uploaded = world.bus.handle(c.UploadDataset(GOV, name, fmt, iter([body]), LIMIT), who)
    version = world.bus.handle(c.RegisterDatasetVersion(GOV, name, fmt, uploaded.blob.sha256,
                                                        description="bank data"), who)
    assert isinstance(version, DatasetVersion)
    return version


def _subscribe(world: World, who: Identity, project: str | None = None) -> Subscription:
    sub = world.bus.handle(c.Subscribe(GOV, "bank-marketing", "ml-dev", "churn model", project), who)
    assert isinstance(sub, Subscription)
    return sub


def _read(world: World, who: Identity, for_account: str = "ml-dev", **kw: object) -> DatasetDownload:
    got = world.bus.handle(c.ReadDataset(GOV, "bank-marketing", for_account, **kw), who)  # type: ignore[arg-type]
    assert isinstance(got, DatasetDownload)
    return got


@pytest.fixture
def people(world: World) -> dict[str, Identity]:
    return {name: world.token_for(name) for name in ("diego", "lena", "sam", "mei", "arthur")}


def test_a_data_engineer_registers_a_dataset_with_its_profile(world: World, people: dict[str, Identity]) -> None:
    version = _register(world, people["diego"])
    assert (version.version, version.rows, version.registered_by) == (1, 2, "diego")
    assert [(col.name, col.dtype) for col in version.columns] == [("age", "int64"), ("balance", "float64"),
                                                                  ("y", "bool")]
    dataset = world.store.data.datasets[(GOV, "bank-marketing")][0]
    assert dataset.owner == "diego" and dataset.description == "bank data"
    event = world.store.data.outbox[-1]
    assert event.type == "charter.data.dataset.version-registered" and event.data["version"] == 1
    assert world.artifacts.blobs[(GOV, version.sha256)] == CSV


def test_versions_of_a_dataset_are_numbered_without_gaps(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    with pytest.raises(ValidationError):
        _register(world, people["diego"], b"a,b\n1\n")
    assert _register(world, people["diego"], CSV + b"52,3,true\n").version == 2


def test_a_data_scientist_cannot_register_a_dataset(world: World, people: dict[str, Identity]) -> None:
    with pytest.raises(PermissionDenied):
        _register(world, people["sam"])
    assert world.artifacts.blobs == {} and world.store.data.datasets == {}


def test_a_ragged_file_is_refused_before_anything_is_stored(world: World, people: dict[str, Identity]) -> None:
    with pytest.raises(ValidationError, match="line 3"):
        _register(world, people["diego"], b"a,b\n1,2\n3\n")
    assert world.artifacts.blobs == {}


def test_datasets_live_only_in_data_governance_accounts(world: World, people: dict[str, Identity]) -> None:
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.UploadDataset("ml-dev", "x", "csv", iter([CSV]), LIMIT), people["lena"])


def test_a_parquet_file_is_profiled_from_its_footer(world: World, people: dict[str, Identity]) -> None:
    out = io.BytesIO()
    pq.write_table(pa.table({"age": [1, 2, 3], "y": [True, False, True]}), out)
    version = _register(world, people["diego"], out.getvalue(), name="bank-parquet", fmt="parquet")
    assert version.rows == 3 and [col.dtype for col in version.columns] == ["int64", "bool"]


def test_only_the_owner_adds_versions(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    world.bus.handle(c.ApplyOrg(_with_second_engineer(), "charter.yaml"), world.admin)
    with pytest.raises(PermissionDenied):
        _register(world, world.token_for("priya"))


def _with_second_engineer() -> str:
    return EXAMPLE.read_text().replace(
        "  - {principal: diego, account: data-governance, role: data-engineer}\n",
        "  - {principal: diego, account: data-governance, role: data-engineer}\n"
        "  - {principal: priya, account: data-governance, role: data-engineer}\n")


def test_every_member_of_the_org_sees_the_catalogue(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    page = world.bus.handle(c.ListDatasets(GOV), people["sam"])
    assert [d.name for d in page.items] == ["bank-marketing"]
    latest = world.bus.handle(c.GetDatasetVersion(GOV, "bank-marketing"), people["mei"])
    assert latest.version == 1


def test_a_subscription_needs_a_reason(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    with pytest.raises(ValidationError):
        world.bus.handle(c.Subscribe(GOV, "bank-marketing", "ml-dev", " "), people["sam"])


def test_a_data_scientist_subscribes_and_the_owner_approves(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    sub = _subscribe(world, people["sam"])
    assert sub.status is SubscriptionStatus.PENDING and sub.requested_by == "sam"
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.DecideSubscription(GOV, sub.id, "Approved"), people["lena"])
    approved = world.bus.handle(c.DecideSubscription(GOV, sub.id, "Approved", "ok", 86400), people["diego"])
    assert approved.status is SubscriptionStatus.APPROVED and approved.decided_by == "diego"
    event = world.store.data.outbox[-1]
    assert event.type == "charter.data.subscription.state-changed"
    assert (event.data["status"], event.data["previous_status"], event.data["actor"], event.data["account"]) == (
        "Approved", "Pending", "diego", "ml-dev")


def test_an_auditor_cannot_subscribe(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.Subscribe(GOV, "bank-marketing", "management", "curious"), people["arthur"])


def test_a_second_pending_request_for_the_same_data_conflicts(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    _subscribe(world, people["sam"])
    with pytest.raises(Conflict):
        _subscribe(world, people["lena"])


def test_a_rejection_needs_a_comment_and_is_final(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    sub = _subscribe(world, people["sam"])
    with pytest.raises(ValidationError, match="comment"):
        world.bus.handle(c.DecideSubscription(GOV, sub.id, "Rejected"), people["diego"])
    world.bus.handle(c.DecideSubscription(GOV, sub.id, "Rejected", "no PII for churn"), people["diego"])
    with pytest.raises(InvalidTransition):
        world.bus.handle(c.DecideSubscription(GOV, sub.id, "Approved"), people["diego"])


def test_a_read_without_a_grant_is_refused_and_audited(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    _subscribe(world, people["sam"])  # pending: no grant yet
    with pytest.raises(PermissionDenied) as denied:
        _read(world, people["sam"])
    assert denied.value.details["policy"] == "no-grant-no-read"
    record = world.store.data.records[-1]
    assert (record.outcome, record.policy, record.actor, record.action) == (
        Outcome.DENIED, "no-grant-no-read", "sam", "data:ReadDataset")
    assert world.store.data.dataset_reads == []


def _approved(world: World, people: dict[str, Identity], expires: int | None = None,
              project: str | None = None) -> Subscription:
    _register(world, people["diego"])
    sub = _subscribe(world, people["sam"], project)
    decided = world.bus.handle(c.DecideSubscription(GOV, sub.id, "Approved", "", expires), people["diego"])
    assert isinstance(decided, Subscription)
    return decided


def test_a_granted_read_streams_the_bytes_and_is_recorded_as_lineage(world: World,
                                                                     people: dict[str, Identity]) -> None:
    sub = _approved(world, people)
    got = _read(world, people["sam"], run="run-7")
    assert b"".join(got.chunks) == CSV
    reads = world.bus.handle(c.ListDatasetReads(GOV, "bank-marketing"), people["diego"]).items
    assert [(r.reader, r.version, r.run, r.for_account, r.subscription) for r in reads] == [
        ("sam", 1, "run-7", "ml-dev", sub.id)]
    record = world.store.data.records[-1]
    assert record.action == "data:ReadDataset" and record.outcome is Outcome.ALLOWED
    assert record.details["run"] == "run-7"


def test_an_expired_grant_is_refused(world: World, people: dict[str, Identity]) -> None:
    _approved(world, people, expires=60)
    _read(world, people["sam"])
    world.clock.advance(seconds=61)
    with pytest.raises(PermissionDenied) as denied:
        _read(world, people["sam"])
    assert denied.value.details["policy"] == "no-grant-no-read"


def test_a_revoked_grant_is_refused(world: World, people: dict[str, Identity]) -> None:
    sub = _approved(world, people)
    world.bus.handle(c.DecideSubscription(GOV, sub.id, "Revoked", "project closed"), people["diego"])
    with pytest.raises(PermissionDenied) as denied:
        _read(world, people["sam"])
    assert denied.value.details["policy"] == "no-grant-no-read"


def test_a_grant_for_one_account_does_not_admit_another(world: World, people: dict[str, Identity]) -> None:
    _approved(world, people)
    with pytest.raises(PermissionDenied) as denied:
        _read(world, people["mei"], for_account="ml-shared-services")
    assert denied.value.details["policy"] == "no-grant-no-read"


def test_nobody_reads_for_an_account_they_hold_no_role_in(world: World, people: dict[str, Identity]) -> None:
    _approved(world, people)
    with pytest.raises(PermissionDenied) as denied:
        _read(world, people["mei"], for_account="ml-dev")
    assert "read-data-only-for-own-accounts" in denied.value.details["policy"]


def test_a_project_grant_admits_only_reads_for_that_project(world: World, people: dict[str, Identity]) -> None:
    _approved(world, people, project="churn")
    assert _read(world, people["sam"], project="churn").read.project == "churn"
    with pytest.raises(PermissionDenied):
        _read(world, people["sam"])


def test_the_owner_sees_every_subscription_and_a_subscriber_its_own(world: World,
                                                                    people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    sub = _subscribe(world, people["sam"])
    world.bus.handle(c.Subscribe(GOV, "bank-marketing", "ml-shared-services", "deploy tests"), people["mei"])
    assert len(world.bus.handle(c.ListSubscriptions(GOV), people["diego"]).items) == 2
    assert [s.id for s in world.bus.handle(c.ListSubscriptions("ml-dev"), people["lena"]).items] == [sub.id]
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.ListSubscriptions("ml-dev"), people["mei"])


def test_the_subscribing_account_cannot_decide_its_own_request(world: World, people: dict[str, Identity]) -> None:
    _register(world, people["diego"])
    sub = _subscribe(world, people["sam"])
    with pytest.raises(NotFound):
        world.bus.handle(c.DecideSubscription("ml-dev", sub.id, "Approved"), people["lena"])
