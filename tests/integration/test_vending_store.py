"""Account vending on each backend: blueprints, account requests and the shares a blueprint makes
round trip through the store, and an approval vends the account in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from charter.bootstrap import Platform
from charter.domain import commands as c
from charter.domain.account_requests import AccountRequest, RequestStatus
from charter.domain.catalog import Share
from charter.domain.org import AccountKind, RoleBinding, Stage
from tests.conftest import EXAMPLE
from tests.integration.conftest import Org

T = datetime(2026, 1, 1, tzinfo=UTC)
SHARED = "ml-shared-services"


def test_the_example_blueprint_round_trips_through_the_store(org: Org, platform: Platform) -> None:
    with platform.bus.uow_factory(readonly=True) as uow:
        blueprint = uow.org.load_state().blueprints["dev-account"]
    assert (blueprint.kind, blueprint.stage) == (AccountKind.WORKLOAD, Stage.DEV)
    assert [b.principal for b in blueprint.bindings] == ["{{requester}}", "priya"]
    assert [r.name for r in blueprint.rules] == ["forward-approved-packages"]
    assert blueprint.rules[0].account == "{{account}}"
    assert [i.key for i in blueprint.imports] == [f"{SHARED}/ml-projects"]
    assert blueprint.bus_allow is None


def test_an_account_request_round_trips_and_lists_by_status(org: Org, platform: Platform) -> None:
    request = AccountRequest("0" * 16 + "a" * 8, "ml-dev-2", "workloads", AccountKind.WORKLOAD, Stage.DEV,
                             "dev-account", "a second team", "lena", T)
    with platform.bus.uow_factory() as uow:
        uow.account_requests.add(request)
        uow.commit()
    decided = request.decide(RequestStatus.REJECTED, "admin", "use ml-dev", T)
    with platform.bus.uow_factory() as uow:
        assert uow.account_requests.get(request.id) == request
        assert uow.account_requests.pending_for("ml-dev-2") == request
        uow.account_requests.save(decided)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.account_requests.get(request.id) == decided
        assert uow.account_requests.pending_for("ml-dev-2") is None
        assert uow.account_requests.list(RequestStatus.REJECTED, None, None, 10) == [decided]
        assert uow.account_requests.list(RequestStatus.PENDING, None, None, 10) == []
        assert uow.account_requests.list(None, "lena", None, 10) == [decided]


def test_an_approval_vends_the_account_with_its_managed_baseline(org: Org, platform: Platform) -> None:
    request = platform.bus.handle(c.RequestAccount("ml-dev-2", "workloads", "workload", "dev", "dev-account",
                                                   "a second team"), org.identity("lena"))
    platform.bus.handle(c.DecideAccountRequest(request.id, True, "ok"), org.admin)
    with platform.bus.uow_factory(readonly=True) as uow:
        state = uow.org.load_state()
        shares = uow.catalog.list_shares(SHARED, "ml-projects")
        stored = uow.account_requests.get(request.id)
    assert state.accounts["ml-dev-2"].ou == "workloads"
    managed = {b: b.managed_by for b in state.bindings if b.account == "ml-dev-2"}
    assert managed[RoleBinding("lena", "ml-dev-2", "lead-data-scientist")] == "blueprint:dev-account"
    assert state.rules["ml-dev-2/forward-approved-packages"].managed_by == "blueprint:dev-account"
    [share] = [s for s in shares if s.target == "ml-dev-2"]
    assert share == Share(SHARED, "ml-projects", "ml-dev-2") and share.managed_by == "blueprint:dev-account"
    assert stored is not None and stored.status is RequestStatus.APPROVED
    again = platform.bus.handle(c.ApplyOrg(EXAMPLE.read_text()), org.admin)
    assert again.changes == []
