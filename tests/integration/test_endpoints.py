"""Endpoints on a real store with the serving supervisor and real worker processes: blue/green
rollouts, cross-account packages, invocations checked against the signature, faults."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from charter.bootstrap import Platform, bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.domain.endpoints import Endpoint, RevisionStatus
from charter.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationError,
)
from charter.services.endpoint_operations import BusEndpointOperations, invoke
from charter.services.ports import RolloutStatus
from tests.endpoints_support import SAMPLE, publish, publish_unloadable
from tests.integration.conftest import Org

TEST = "ml-test"


@pytest.fixture
def serving(platform: Platform) -> Iterator[Platform]:
    """The supervisor running as `charter server` runs it: a thread, woken by commits."""
    stop = threading.Event()
    platform.bus.endpoints = platform.endpoints
    platform.bus.outbox_listeners.append(platform.endpoints.wake)
    thread = threading.Thread(target=platform.endpoints.run_forever, args=(stop,), daemon=True)
    thread.start()
    yield platform
    stop.set()
    platform.endpoints.wake()
    thread.join(30)


def wait_for(check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def rollout_done(org: Org, name: str, revision: int) -> Callable[[], Endpoint | None]:
    def check() -> Endpoint | None:
        found: Endpoint = org.bus.handle(c.GetEndpoint(TEST, name), org.identity("mei"))
        return found if found.revision(revision).status.finished else None
    return check


def deploy(org: Org, name: str, package: str, **kw: Any) -> Endpoint:
    result: Endpoint = org.bus.handle(c.DeployEndpoint(TEST, name, (c.VariantSpec(package),), **kw),
                                      org.identity("mei"))
    return result


@pytest.fixture
def central(org: Org) -> Callable[..., str]:
    def make(**kw: Any) -> str:
        return publish(org.bus, org.identity("promotion-bot"), org.identity("mei"), **kw)
    return make


def test_a_deployed_skops_package_serves_predictions_once_healthy(serving: Platform, org: Org,
                                                                  central: Callable[..., str]) -> None:
    package = central()
    created = deploy(org, "churn", package, reason="first")
    assert created.latest.status is RevisionStatus.UPDATING and created.serving_revision is None
    done = wait_for(rollout_done(org, "churn", 1))
    assert done.latest.status is RevisionStatus.IN_SERVICE, done.latest.status_reason
    assert done.serving_revision == 1
    answer = invoke(org.bus, TEST, "churn", {"instances": [[0.0, 1.0], [1.0, 0.0]]}, identity=org.identity("mei"))
    assert answer["predictions"] == [0, 1]
    assert answer["package"] == package and answer["revision"] == 1


def test_a_request_right_after_the_rollout_is_recorded_is_served(serving: Platform, org: Org,
                                                                  central: Callable[..., str]) -> None:
    """From the moment the store says InService a request is served: one made between the rollout's
    commit and its workers taking the route waits for them instead of being told the endpoint
    serves nothing (a deploy stage runs its integration tests the moment it reads InService)."""
    answers: list[Any] = []
    asked = threading.Event()
    mei = org.identity("mei")

    def invoke_now() -> None:
        try:
            answers.append(invoke(org.bus, TEST, "churn", SAMPLE, identity=mei))
        except Exception as error:  # noqa: BLE001 - the test asserts on what came back
            answers.append(error)

    def on_commit() -> None:
        # Called by the rollout thread after its commit: the request runs while the thread waits here.
        with org.bus.uow_factory(readonly=True) as uow:
            endpoint = uow.endpoints.get(TEST, "churn")
        if endpoint is not None and endpoint.serving_revision == 1 and not asked.is_set():
            asked.set()
            caller = threading.Thread(target=invoke_now)
            caller.start()
            caller.join(0.5)

    platform = serving
    platform.bus.outbox_listeners.append(on_commit)
    try:
        deploy(org, "churn", central())
        wait_for(lambda: answers)
    finally:
        platform.bus.outbox_listeners.remove(on_commit)
    [answer] = answers
    assert isinstance(answer, dict), answer
    assert answer["revision"] == 1


def test_a_rollout_whose_outcome_could_not_be_stored_is_rolled_out_again(
        serving: Platform, org: Org, central: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The store failing just as a healthy rollout records its outcome leaves the revision
    Updating, not stuck: the next round starts it again, and it ends in service."""
    supervisor = serving.endpoints
    record, failed = supervisor._record, []

    def fails_once(*args: Any) -> bool:
        if not failed:
            failed.append(args)
            raise RuntimeError("the database went away")
        return record(*args)
    monkeypatch.setattr(supervisor, "_record", fails_once)
    deploy(org, "churn", central())
    done = wait_for(rollout_done(org, "churn", 1))
    assert len(failed) == 1 and done.latest.status is RevisionStatus.IN_SERVICE, done.latest.status_reason
    answer = invoke(org.bus, TEST, "churn", SAMPLE, identity=org.identity("mei"))
    assert answer["revision"] == 1


def test_an_onnx_package_serves_the_same_predictions_by_column(serving: Platform, org: Org,
                                                              central: Callable[..., str]) -> None:
    deploy(org, "churn-onnx", central(fmt="onnx"))
    wait_for(rollout_done(org, "churn-onnx", 1))
    answer = invoke(org.bus, TEST, "churn-onnx", {"inputs": {"f0": [0.0, 1.0], "f1": [1.0, 0.0]}},
                    identity=org.identity("mei"))
    assert answer["predictions"] == [0, 1]


def test_an_unapproved_package_is_not_deployed(org: Org, central: Callable[..., str]) -> None:
    with pytest.raises(InvalidTransition, match="PendingManualApproval"):
        deploy(org, "churn", central(approve=False))


def test_a_group_whose_policy_does_not_admit_the_account_is_refused(org: Org, central: Callable[..., str]) -> None:
    with pytest.raises(PermissionDenied):
        deploy(org, "churn", central(readers=("ml-prod",)))


def test_a_data_scientist_cannot_deploy_an_endpoint(org: Org, central: Callable[..., str]) -> None:
    package = central()
    with pytest.raises(PermissionDenied):
        org.bus.handle(c.DeployEndpoint(TEST, "churn", (c.VariantSpec(package),)), org.identity("sam"))


def test_a_principal_without_a_role_in_the_account_cannot_invoke(serving: Platform, org: Org,
                                                                 central: Callable[..., str]) -> None:
    deploy(org, "churn", central())
    wait_for(rollout_done(org, "churn", 1))
    with pytest.raises(PermissionDenied):
        invoke(org.bus, TEST, "churn", SAMPLE, identity=org.identity("sam"))


def test_a_model_that_fails_to_load_fails_the_rollout_with_the_reason(serving: Platform, org: Org) -> None:
    package = publish_unloadable(org.bus, org.identity("promotion-bot"), org.identity("mei"))
    deploy(org, "broken", package)
    done = wait_for(rollout_done(org, "broken", 1))
    assert done.latest.status is RevisionStatus.FAILED and done.serving_revision is None
    assert "failed to load" in (done.latest.status_reason or "")
    with pytest.raises(NotFound, match="serves nothing"):
        invoke(org.bus, TEST, "broken", SAMPLE, identity=org.identity("mei"))


def test_an_update_that_never_gets_healthy_leaves_the_old_revision_serving(
        serving: Platform, org: Org, central: Callable[..., str]) -> None:
    good = central()
    deploy(org, "churn", good)
    wait_for(rollout_done(org, "churn", 1))
    deploy(org, "churn", publish_unloadable(org.bus, org.identity("promotion-bot"), org.identity("mei")))
    done = wait_for(rollout_done(org, "churn", 2))
    assert done.revision(2).status is RevisionStatus.FAILED and done.serving_revision == 1
    answer = invoke(org.bus, TEST, "churn", SAMPLE, identity=org.identity("mei"))
    assert answer["revision"] == 1 and answer["package"] == good


def test_a_killed_worker_is_restarted_and_meanwhile_requests_get_503(serving: Platform, org: Org,
                                                                      central: Callable[..., str]) -> None:
    deploy(org, "churn", central())
    wait_for(rollout_done(org, "churn", 1))
    wait_for(lambda: serving.endpoints.status(TEST, "churn"))
    [worker] = serving.endpoints.status(TEST, "churn")
    os.kill(worker["pid"], signal.SIGKILL)
    refused = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            answer = invoke(org.bus, TEST, "churn", SAMPLE, identity=org.identity("mei"))
        except ServiceUnavailable:
            refused += 1
            time.sleep(0.01)
            continue
        [now] = serving.endpoints.status(TEST, "churn")
        if now["pid"] != worker["pid"]:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the worker was not restarted")
    assert answer["predictions"] == [0, 1] and now["restarts"] == 1 and refused >= 1


def test_rollback_returns_to_the_previous_configuration_as_a_new_revision(
        serving: Platform, org: Org, central: Callable[..., str]) -> None:
    first, second = central(), central(fmt="onnx")
    deploy(org, "churn", first)
    wait_for(rollout_done(org, "churn", 1))
    deploy(org, "churn", second)
    wait_for(rollout_done(org, "churn", 2))
    back: Endpoint = org.bus.handle(c.RollbackEndpoint(TEST, "churn", "v2 misbehaves"), org.identity("mei"))
    assert back.latest.number == 3 and back.latest.rollback_of == 1 and back.latest.packages == (first,)
    wait_for(rollout_done(org, "churn", 3))
    assert invoke(org.bus, TEST, "churn", SAMPLE, identity=org.identity("mei"))["package"] == first


def test_invocations_are_checked_against_the_signature(serving: Platform, org: Org,
                                                       central: Callable[..., str]) -> None:
    deploy(org, "churn", central())
    wait_for(rollout_done(org, "churn", 1))
    mei = org.identity("mei")
    with pytest.raises(ValidationError, match="unknown column f9"):
        invoke(org.bus, TEST, "churn", {"inputs": {"f0": [1.0], "f1": [1.0], "f9": [1.0]}}, identity=mei)
    with pytest.raises(ValidationError, match="instances\\[0\\] has 3 values"):
        invoke(org.bus, TEST, "churn", {"instances": [[1.0, 2.0, 3.0]]}, identity=mei)


def test_data_capture_writes_sampled_pairs_in_batches_listed_on_the_endpoint(
        serving: Platform, org: Org, central: Callable[..., str]) -> None:
    deploy(org, "churn", central(), capture_percent=100)
    wait_for(rollout_done(org, "churn", 1))
    mei = org.identity("mei")
    for _ in range(3):
        invoke(org.bus, TEST, "churn", SAMPLE, identity=mei)
    [batch] = serving.endpoints.flush_captures(force=True)
    listed = org.bus.handle(c.ListEndpointCaptures(TEST, "churn"), mei).items
    assert [k.sha256 for k in listed] == [batch.sha256] and batch.records == 3
    lines = b"".join(serving.artifacts.open(TEST, batch.sha256)).decode().splitlines()
    assert '"predictions":[0,1]' in lines[0]


def test_the_deployments_port_deploys_reports_the_rollout_invokes_and_rolls_back(
        serving: Platform, org: Org, central: Callable[..., str]) -> None:
    ops = BusEndpointOperations(org.bus)
    mei = org.identity("mei")
    first, second = central(), central()
    assert ops.deploy(mei, TEST, "churn", first, reason="test stage") == 1
    wait_for(lambda: ops.rollout(mei, TEST, "churn", 1).status is RolloutStatus.IN_SERVICE)
    assert ops.deploy(mei, TEST, "churn", second, reason="next") == 2
    rollout = wait_for(lambda: (r := ops.rollout(mei, TEST, "churn", 2)).status is RolloutStatus.IN_SERVICE and r)
    assert rollout.serving_revision == 2 and rollout.serving_package == second
    assert ops.invoke(mei, TEST, "churn", SAMPLE)["predictions"] == [0, 1]
    assert ops.rollback(mei, TEST, "churn", reason="smoke failed") == 3
    back = wait_for(lambda: (r := ops.rollout(mei, TEST, "churn", 3)).status is RolloutStatus.IN_SERVICE and r)
    assert back.serving_package == first


def test_every_endpoint_command_is_audited_and_emits_a_state_change(org: Org, central: Callable[..., str]) -> None:
    deploy(org, "churn", central())
    org.bus.handle(c.DeleteEndpoint(TEST, "churn", "done"), org.identity("mei"))
    with org.platform.bus.uow_factory(readonly=True) as uow:
        records = uow.audit.find(c.AuditFilter(account=TEST), None, 100)
        events = uow.outbox.claim_pending(1000)
    assert {"endpoints:DeployEndpoint", "endpoints:DeleteEndpoint"} <= {r.action for r in records}
    changes = [e for e in events if e.type == "charter.endpoints.endpoint.state-changed"]
    assert [e.data["status"] for e in changes] == ["Creating", "Deleted"]


def test_the_supervisor_brings_back_what_each_endpoint_serves_after_a_restart(
        platform: Platform, org: Org, central: Callable[..., str], settings: Any) -> None:
    from charter.bootstrap import bootstrap

    stop = threading.Event()
    platform.bus.endpoints = platform.endpoints
    platform.bus.outbox_listeners.append(platform.endpoints.wake)
    thread = threading.Thread(target=platform.endpoints.run_forever, args=(stop,), daemon=True)
    thread.start()
    deploy(org, "churn", central())
    wait_for(rollout_done(org, "churn", 1))
    stop.set()
    platform.endpoints.wake()
    thread.join(30)
    again = bootstrap(settings)
    try:
        again.bus.endpoints = again.endpoints
        stop2 = threading.Event()
        thread2 = threading.Thread(target=again.endpoints.run_forever, args=(stop2,), daemon=True)
        thread2.start()
        mei = again.bus.authenticate(org.bearer("mei"))
        # At once, while its workers are still loading: the request waits for them rather than
        # being told the endpoint serves nothing (a deployment resumed after a restart would fail
        # its integration tests on that).
        answer = invoke(again.bus, TEST, "churn", SAMPLE, identity=mei)
        assert answer["revision"] == 1
        stop2.set()
        again.endpoints.wake()
        thread2.join(30)
    finally:
        again.close()


def test_the_worker_template_starts_with_the_server_unless_told_to_wait_for_an_endpoint(
        settings: Settings, tmp_path: Path) -> None:
    eager = bootstrap(settings)
    lazy = bootstrap(settings.model_copy(update={"endpoint_warm_at_start": False, "data_dir": tmp_path / "lazy"}))
    try:
        eager.endpoints.reconcile()
        lazy.endpoints.reconcile()
        assert eager.endpoints.warmed and not lazy.endpoints.warmed
    finally:
        eager.close()
        lazy.close()
