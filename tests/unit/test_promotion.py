"""Promotion into the central registry: carried whole, verified, once, and only when approved."""

from __future__ import annotations

import pytest

from charter.domain import commands as c
from charter.domain.audit import Outcome
from charter.domain.identity import Identity
from charter.domain.registry import ApprovalStatus, ModelPackage
from charter.errors import IntegrityError, InvalidTransition, PermissionDenied, ValidationError
from charter.services.handlers.promotion import Promotion
from tests.models import skops_model
from tests.unit.conftest import World

MODEL = skops_model()
CENTRAL = "ml-shared-services"


def _approved_in_dev(world: World, readers: tuple[str, ...] = (CENTRAL, "ou:deployments")) -> ModelPackage:
    lena, sam = world.token_for("lena"), world.token_for("sam")
    world.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn", "churn model", (("team", "risk"),),
                                               readers), lena)
    blob = world.bus.handle(c.UploadArtifact("ml-dev", [MODEL], 1 << 20), sam)
    world.bus.handle(c.RegisterModelPackage(
        "ml-dev", "churn", "skops", (c.ArtifactRef("model.skops", blob.sha256),),
        signature={"inputs": [{"name": "age", "dtype": "float64"}]}, metrics=(("auc", 0.91),),
        sample_payload={"instances": [[41.0]]}, description="v1", tags=(("algo", "logreg"),),
        run="run-1", run_started_by="sam", datasets=("bank-marketing@1",),
        product_version="train-from-dataset@1.0.0", parameters=(("max_depth", "6"),)), sam)
    approved: ModelPackage = world.bus.handle(
        c.DecideModelPackage("ml-dev", "churn", 1, "Approved", "beats v0"), lena)
    return approved


def _promote(world: World, bot: Identity, source: ModelPackage, *, copy: bool = True) -> Promotion:
    if copy:
        world.bus.handle(c.CopyPackageArtifacts(str(source.crn), CENTRAL), bot)
    result: Promotion = world.bus.handle(
        c.PromoteModelPackage(str(source.crn), CENTRAL, source.digests, "event-1"), bot)
    return result


def test_an_approved_dev_package_becomes_a_pending_central_package_carrying_everything(world: World) -> None:
    source = _approved_in_dev(world)
    promotion = _promote(world, world.token_for("promotion-bot"), source)
    central = promotion.package
    assert promotion.created and (central.account, central.group, central.version) == (CENTRAL, "churn-ml-dev", 1)
    assert central.status is ApprovalStatus.PENDING and central.origin == str(source.crn)
    assert (central.artifacts, central.signature, central.metrics, central.sample_payload,
            central.description, central.tags, central.lineage) == (
        source.artifacts, source.signature, source.metrics, source.sample_payload,
        source.description, source.tags, source.lineage)
    group = world.bus.handle(c.GetModelPackageGroup(CENTRAL, "churn-ml-dev"), world.token_for("mei"))
    assert group.tags == (("team", "risk"),) and group.readers == ("ou:deployments",)
    assert world.artifacts.stat(CENTRAL, source.artifacts[0].sha256) is not None


def test_the_same_approval_delivered_twice_makes_one_central_package(world: World) -> None:
    source, bot = _approved_in_dev(world), world.token_for("promotion-bot")
    first, second = _promote(world, bot, source), _promote(world, bot, source)
    assert (first.created, second.created) == (True, False)
    assert second.package == first.package
    packages = world.bus.handle(c.ListModelPackages(CENTRAL, "churn-ml-dev"), world.token_for("mei"))
    assert [p.version for p in packages.items] == [1]
    registered = [e for e in world.store.data.outbox
                  if e.type == "charter.registry.model-package.registered" and e.source == CENTRAL]
    assert len(registered) == 1


def test_whoever_produced_the_source_cannot_approve_the_central_package(world: World) -> None:
    _promote(world, world.token_for("promotion-bot"), _approved_in_dev(world))
    mei = world.token_for("mei")
    approved = world.bus.handle(c.DecideModelPackage(CENTRAL, "churn-ml-dev", 1, "Approved", "ok"), mei)
    assert approved.status is ApprovalStatus.APPROVED  # mei neither registered nor ran it


def test_a_package_that_is_not_approved_is_not_promoted(world: World) -> None:
    source = _approved_in_dev(world)
    world.bus.handle(c.DecideModelPackage("ml-dev", "churn", 1, "Rejected", "leak found"),
                     world.token_for("lena"))
    with pytest.raises(InvalidTransition):
        _promote(world, world.token_for("promotion-bot"), source)
    assert world.bus.handle(c.ListModelPackageGroups(CENTRAL), world.token_for("mei")).items == []


def test_an_approval_on_other_digests_than_the_packages_is_not_promoted(world: World) -> None:
    source, bot = _approved_in_dev(world), world.token_for("promotion-bot")
    world.bus.handle(c.CopyPackageArtifacts(str(source.crn), CENTRAL), bot)
    with pytest.raises(InvalidTransition):
        world.bus.handle(c.PromoteModelPackage(str(source.crn), CENTRAL, ("0" * 64,)), bot)


def test_promotion_refuses_to_register_before_the_artifacts_are_copied(world: World) -> None:
    source = _approved_in_dev(world)
    with pytest.raises(ValidationError, match="has not been copied"):
        _promote(world, world.token_for("promotion-bot"), source, copy=False)
    assert world.bus.handle(c.ListModelPackageGroups(CENTRAL), world.token_for("mei")).items == []


def test_a_source_group_that_does_not_admit_the_central_account_is_not_promoted(world: World) -> None:
    source = _approved_in_dev(world, readers=())
    with pytest.raises(PermissionDenied):
        _promote(world, world.token_for("promotion-bot"), source)
    denied = [r for r in world.store.data.records if r.outcome is Outcome.DENIED]
    assert denied[-1].actor == "promotion-bot" and denied[-1].resource == str(source.crn)


def test_a_corrupted_source_artifact_stops_the_copy_and_leaves_nothing_central(world: World) -> None:
    source = _approved_in_dev(world)
    sha = source.artifacts[0].sha256
    world.artifacts.blobs[("ml-dev", sha)] = b"tampered" + MODEL
    with pytest.raises(IntegrityError):
        _promote(world, world.token_for("promotion-bot"), source)
    assert world.artifacts.stat(CENTRAL, sha) is None


def test_a_data_scientist_cannot_promote(world: World) -> None:
    source = _approved_in_dev(world)
    with pytest.raises(PermissionDenied):
        _promote(world, world.token_for("sam"), source)


def test_the_central_registry_cannot_promote_its_own_packages(world: World) -> None:
    with pytest.raises(ValidationError):
        world.bus.handle(c.PromoteModelPackage(f"crn:charter:{CENTRAL}:registry:model-package/x/1", CENTRAL),
                         world.token_for("promotion-bot"))


def test_each_promotion_adds_a_card_version_documenting_its_package(world: World) -> None:
    bot, lena, sam = world.token_for("promotion-bot"), world.token_for("lena"), world.token_for("sam")
    first = _promote(world, bot, _approved_in_dev(world)).package
    blob = world.bus.handle(c.UploadArtifact("ml-dev", [MODEL + b" "], 1 << 20), sam)
    world.bus.handle(c.RegisterModelPackage("ml-dev", "churn", "skops", (
        c.ArtifactRef("model.skops", world.bus.handle(c.UploadArtifact("ml-dev", [MODEL], 1 << 20), sam).sha256),
        c.ArtifactRef("extra.bin", blob.sha256))), sam)
    second_source = world.bus.handle(c.DecideModelPackage("ml-dev", "churn", 2, "Approved", "v2"), lena)
    second = _promote(world, bot, second_source)
    _promote(world, bot, second_source)  # delivered again: no third version
    view = world.bus.handle(c.GetModelCard(CENTRAL, "churn-ml-dev"), world.token_for("mei"))
    assert [v.package for v in view.card.versions] == [first.crn, second.package.crn]
    assert second.card_version == 2
