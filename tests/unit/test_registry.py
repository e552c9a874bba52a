"""Registering and deciding model packages: the persona table and separation of duties."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from charter.domain import commands as c
from charter.domain.audit import Outcome
from charter.domain.identity import Identity
from charter.domain.registry import ApprovalStatus, ModelPackage
from charter.errors import InvalidTransition, NotFound, PermissionDenied, TooLarge, ValidationError
from tests.models import skops_model
from tests.unit.conftest import World

MODEL = skops_model()


def _group(world: World, who: Identity, account: str = "ml-dev", name: str = "churn",
           readers: tuple[str, ...] = ()) -> None:
    world.bus.handle(c.CreateModelPackageGroup(account, name, "churn model", readers=readers), who)


def _register(world: World, who: Identity, account: str = "ml-dev", group: str = "churn",
              **extra: object) -> ModelPackage:
    blob = world.bus.handle(c.UploadArtifact(account, [MODEL], 1 << 20), who)
    command = c.RegisterModelPackage(account, group, "skops", (c.ArtifactRef("model.skops", blob.sha256),),
                                     metrics=(("auc", 0.91),), **extra)  # type: ignore[arg-type]
    result: ModelPackage = world.bus.handle(command, who)
    return result


def _decide(world: World, who: Identity, version: int, status: str = "Approved",
            account: str = "ml-dev") -> ModelPackage:
    result: ModelPackage = world.bus.handle(
        c.DecideModelPackage(account, "churn", version, status, "looks good"), who)
    return result


def test_a_data_scientist_registers_a_pending_package(world: World) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    package = _register(world, sam)
    assert (package.version, package.status, package.lineage.registered_by) == (
        1, ApprovalStatus.PENDING, "sam")
    assert package.artifacts[0].size == len(MODEL)


def test_the_lead_data_scientist_approves_in_dev(world: World) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    _register(world, sam)
    approved = _decide(world, lena, 1)
    assert approved.status is ApprovalStatus.APPROVED and approved.history[-1].actor == "lena"
    event = world.store.data.outbox[-1]
    assert event.type == "charter.registry.model-package.state-changed"
    assert event.data["previous_status"] == "PendingManualApproval" and event.data["status"] == "Approved"


def test_a_data_scientist_cannot_approve(world: World) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    _register(world, lena)
    with pytest.raises(PermissionDenied) as denied:
        _decide(world, sam, 1)
    assert denied.value.details["policy"] == "default-deny"


def test_nobody_approves_a_package_they_registered(world: World) -> None:
    lena = world.token_for("lena")
    _group(world, lena)
    _register(world, lena)
    with pytest.raises(PermissionDenied) as denied:
        _decide(world, lena, 1)
    assert denied.value.details["policy"] == "no-self-approval"
    last = world.store.data.records[-1]
    assert (last.outcome, last.policy, last.action) == (Outcome.DENIED, "no-self-approval",
                                                         "registry:ApproveModelPackage")


def test_nobody_approves_a_package_whose_run_they_started(world: World) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    _register(world, sam, run="run-7", run_started_by="lena")
    with pytest.raises(PermissionDenied, match="no-self-approval"):
        _decide(world, lena, 1)


def test_an_ml_engineer_cannot_approve_in_a_dev_registry(world: World, example_text: str) -> None:
    world.bus.handle(c.ApplyOrg(example_text.replace(
        "  - {principal: mei, account: ml-test, role: ml-engineer}",
        "  - {principal: mei, account: ml-test, role: ml-engineer}\n"
        "  - {principal: mei, account: ml-dev, role: ml-engineer}")), world.admin)
    lena, sam, mei = world.token_for("lena"), world.token_for("sam"), world.token_for("mei")
    _group(world, lena)
    _register(world, sam)
    with pytest.raises(PermissionDenied):
        _decide(world, mei, 1)


def test_the_central_registry_is_decided_by_an_ml_engineer_not_by_the_one_who_registered(world: World) -> None:
    mei, bot = world.token_for("mei"), world.token_for("promotion-bot")
    _group(world, mei, account="ml-shared-services", name="churn")
    _register(world, bot, account="ml-shared-services")
    with pytest.raises(PermissionDenied, match="no-self-approval"):
        _decide(world, bot, 1, account="ml-shared-services")
    assert _decide(world, mei, 1, account="ml-shared-services").status is ApprovalStatus.APPROVED


def test_a_decision_can_change_later_but_not_to_itself(world: World) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    _register(world, sam)
    _decide(world, lena, 1)
    assert _decide(world, lena, 1, "Rejected").status is ApprovalStatus.REJECTED
    with pytest.raises(InvalidTransition):
        _decide(world, lena, 1, "Rejected")


def test_versions_count_up_per_group(world: World) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    assert [_register(world, sam).version for _ in range(3)] == [1, 2, 3]


def test_an_artifact_not_uploaded_to_the_account_is_refused(world: World) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    with pytest.raises(ValidationError, match="was not uploaded"):
        world.bus.handle(c.RegisterModelPackage("ml-dev", "churn", "skops",
                                                (c.ArtifactRef("model.skops", "f" * 64),)), sam)
    assert world.store.data.packages == {}


@pytest.mark.parametrize("fmt", ["pickle", "joblib", "cloudpickle", "pt", ""])
def test_pickle_and_unknown_formats_are_refused(world: World, fmt: str) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    blob = world.bus.handle(c.UploadArtifact("ml-dev", [MODEL], 1 << 20), sam)
    with pytest.raises(ValidationError, match="format"):
        world.bus.handle(c.RegisterModelPackage("ml-dev", "churn", fmt,
                                                (c.ArtifactRef("model.bin", blob.sha256),)), sam)


def test_a_group_readers_account_may_read_it(world: World) -> None:
    mei = world.token_for("mei")
    _group(world, mei, account="ml-shared-services", name="churn-ml-dev", readers=("ou:deployments",))
    sam = world.token_for("sam")
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.GetModelPackageGroup("ml-shared-services", "churn-ml-dev"), sam)
    grace_in_prod = world.session_for("grace", "ml-prod", "governance-officer")
    group = world.bus.handle(c.GetModelPackageGroup("ml-shared-services", "churn-ml-dev"), grace_in_prod)
    assert group.readers == ("ou:deployments",)


def test_an_upload_over_the_limit_leaves_nothing_and_is_audited(world: World) -> None:
    sam = world.token_for("sam")
    with pytest.raises(TooLarge):
        world.bus.handle(c.UploadArtifact("ml-dev", [b"x" * 100], 10), sam)
    assert world.artifacts.blobs == {}
    assert world.store.data.records[-1].outcome == Outcome.FAILED


def test_an_unknown_group_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.bus.handle(c.GetModelPackageGroup("ml-dev", "nope"), world.token_for("lena"))


def test_a_file_that_is_not_what_its_format_says_is_refused(world: World) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    blob = world.bus.handle(c.UploadArtifact("ml-dev", [b"\x80\x04K\x01."], 1 << 20), sam)
    with pytest.raises(ValidationError, match="model.skops: .*pickle"):
        world.bus.handle(c.RegisterModelPackage("ml-dev", "churn", "skops",
                                                (c.ArtifactRef("model.skops", blob.sha256),)), sam)
    assert world.store.data.packages == {}


def test_a_package_without_its_model_file_is_refused(world: World) -> None:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    blob = world.bus.handle(c.UploadArtifact("ml-dev", [MODEL], 1 << 20), sam)
    with pytest.raises(ValidationError, match="needs its model file"):
        world.bus.handle(c.RegisterModelPackage("ml-dev", "churn", "skops",
                                                (c.ArtifactRef("weights.bin", blob.sha256),)), sam)


def test_a_model_checked_at_upload_is_not_read_again_at_registration(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    model = sio.dumps(LogisticRegression(C=0.37).fit(np.array([[0.0], [1.0]]), np.array([0, 1])))
    lena, sam = world.token_for("lena"), world.token_for("sam")
    _group(world, lena)
    blob = world.bus.handle(c.UploadArtifact("ml-dev", [model], 1 << 20, inspect_as="skops"), sam)

    def no_reads(*_: object) -> None:
        raise AssertionError("registration read the model file again")

    monkeypatch.setattr(world.artifacts, "open", no_reads)
    package = world.bus.handle(c.RegisterModelPackage(
        "ml-dev", "churn", "skops", (c.ArtifactRef("model.skops", blob.sha256),)), sam)
    assert package.version == 1
