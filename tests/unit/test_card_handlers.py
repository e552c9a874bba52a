"""The model-card service on fakes: who edits, submits and reviews, stale edits, the promotion hook."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from charter.domain import commands as c
from charter.domain.audit import Outcome
from charter.domain.authz import Action, Resource
from charter.domain.cards import (
    CardContent,
    CardStatus,
    ModelCard,
    card_content_from_document,
    validate_card_document,
)
from charter.domain.crn import CRN
from charter.domain.identity import Identity
from charter.domain.registry import Artifact, Lineage, ModelFormat, ModelPackage
from charter.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationError
from charter.services.handlers.cards import CardExport, CardView, record_package
from charter.services.messagebus import HandlerContext
from tests.unit.conftest import EXAMPLE, World

CENTRAL, GROUP = "ml-shared-services", "churn-ml-dev"
DOC: dict[str, Any] = {
    "overview": {"owner": "mei", "description": "Predicts churn.", "riskRating": "medium"},
    "intendedUses": {"purpose": "Retention calls", "users": ["retention team"]},
}


def _bind(world: World, *lines: str) -> None:
    """Apply the example organization with extra role bindings."""
    anchor = "  - {principal: promotion-bot, account: ml-shared-services, role: ml-engineer}"
    text = EXAMPLE.read_text().replace(anchor, "\n".join((anchor, *lines)))
    world.bus.handle(c.ApplyOrg(text), world.admin)


def _group(world: World, who: Identity, readers: tuple[str, ...] = ()) -> None:
    world.bus.handle(c.CreateModelPackageGroup(CENTRAL, GROUP, "churn, promoted", readers=readers), who)


def _edit(world: World, who: Identity, doc: dict[str, Any] | None = None, summary: str = "first draft",
          expected: int | None = None) -> ModelCard:
    card: ModelCard = world.bus.handle(c.EditModelCard(CENTRAL, GROUP, doc or DOC, summary, expected), who)
    return card


@pytest.fixture
def mei(world: World) -> Identity:
    identity = world.token_for("mei")
    _group(world, identity)
    return identity


def _submitted(world: World, mei: Identity) -> ModelCard:
    _edit(world, mei)
    card: ModelCard = world.bus.handle(c.SubmitModelCard(CENTRAL, GROUP, "ready"), mei)
    return card


def test_an_ml_engineer_creates_a_card_by_editing_it_and_every_edit_is_a_version(
        world: World, mei: Identity) -> None:
    first = _edit(world, mei)
    second = _edit(world, mei, {**DOC, "caveatsAndRecommendations": "Retrain monthly."}, "caveats")
    assert (first.status, len(first.versions), len(second.versions)) == (CardStatus.DRAFT, 1, 2)
    assert second.latest.content.caveats_and_recommendations == "Retrain monthly."
    assert second.versions[0] == first.versions[0]
    events = [e for e in world.store.data.outbox if e.type == "charter.cards.model-card.state-changed"]
    assert [(e.data["version"], e.data["status"], e.data["previous_status"], e.data["comment"])
            for e in events] == [(1, "Draft", None, "first draft"), (2, "Draft", "Draft", "caveats")]
    assert events[0].subject == "crn:charter:ml-shared-services:cards:model-card/churn-ml-dev"
    record = world.store.data.records[-1]
    assert (record.action, record.resource, record.details["version"], record.details["status"]) == (
        "cards:EditModelCard", events[0].subject, 2, "Draft")


def test_a_governance_officer_approves_a_submitted_card(world: World, mei: Identity) -> None:
    assert _submitted(world, mei).status is CardStatus.PENDING_REVIEW
    approved: ModelCard = world.bus.handle(
        c.ApproveModelCard(CENTRAL, GROUP, "complete", version=1), world.token_for("grace"))
    assert (approved.status, approved.approved_version, approved.history[-1].actor) == (
        CardStatus.APPROVED, 1, "grace")
    event = world.store.data.outbox[-1]
    assert (event.data["status"], event.data["previous_status"], event.data["actor"], event.data["comment"]) == (
        "Approved", "PendingReview", "grace", "complete")
    record = world.store.data.records[-1]
    assert (record.action, record.details["previous_status"], record.details["status"]) == (
        "cards:ApproveModelCard", "PendingReview", "Approved")


def test_the_author_of_a_version_under_review_cannot_approve_it_naming_the_policy(world: World) -> None:
    _bind(world, "  - {principal: mei, account: ml-shared-services, role: governance-officer}")
    mei = world.token_for("mei")
    _group(world, mei)
    _submitted(world, mei)
    with pytest.raises(PermissionDenied) as denied:
        world.bus.handle(c.ApproveModelCard(CENTRAL, GROUP), mei)
    assert denied.value.details["policy"] == "card-approver-is-not-author"
    last = world.store.data.records[-1]
    assert (last.outcome, last.policy, last.action) == (
        Outcome.DENIED, "card-approver-is-not-author", "cards:ApproveModelCard")
    shown: CardView = world.bus.handle(c.GetModelCard(CENTRAL, GROUP), mei)
    assert shown.card.status is CardStatus.PENDING_REVIEW


def test_the_domain_refuses_an_author_even_when_the_policy_set_would_not(world: World, mei: Identity) -> None:
    """Separation of duties holds in the card itself, below any policy an organization writes."""
    card = _submitted(world, mei)
    with pytest.raises(PermissionDenied) as denied:
        card.approve("mei", datetime(2026, 1, 2, tzinfo=UTC))
    assert denied.value.details["policy"] == "card-approver-is-not-author"


def test_a_data_scientist_cannot_approve_a_card(world: World) -> None:
    _bind(world, "  - {principal: sam, account: ml-shared-services, role: data-scientist}")
    mei = world.token_for("mei")
    _group(world, mei)
    _submitted(world, mei)
    with pytest.raises(PermissionDenied) as denied:
        world.bus.handle(c.ApproveModelCard(CENTRAL, GROUP), world.token_for("sam"))
    assert denied.value.details["policy"] == "default-deny"


def test_a_governance_officer_cannot_edit_a_card(world: World, mei: Identity) -> None:
    with pytest.raises(PermissionDenied):
        _edit(world, world.token_for("grace"))


def test_a_stale_edit_is_a_conflict_and_changes_nothing(world: World, mei: Identity) -> None:
    _edit(world, mei, expected=0)
    _edit(world, mei, {**DOC, "ethicalConsiderations": "Tenure tracks age."}, expected=1)
    with pytest.raises(Conflict, match="version 2, not 1"):
        _edit(world, mei, {**DOC, "ethicalConsiderations": "Something else."}, expected=1)
    shown: CardView = world.bus.handle(c.GetModelCard(CENTRAL, GROUP), mei)
    assert len(shown.card.versions) == 2
    assert world.store.data.records[-1].outcome is Outcome.FAILED


def test_a_stale_save_is_refused_by_the_repository(world: World, mei: Identity) -> None:
    _edit(world, mei)
    with world.store.uow() as uow:
        stale = uow.cards.get(CENTRAL, GROUP)
        assert stale is not None
        uow.cards.save(stale.submit("mei", datetime(2026, 1, 2, tzinfo=UTC)))
        with pytest.raises(Conflict):
            uow.cards.save(stale.edit("mei", datetime(2026, 1, 2, tzinfo=UTC), "late", content=CardContent()))


def test_an_archived_card_refuses_edits(world: World, mei: Identity) -> None:
    grace = world.token_for("grace")
    _submitted(world, mei)
    world.bus.handle(c.ApproveModelCard(CENTRAL, GROUP), grace)
    archived: ModelCard = world.bus.handle(c.ArchiveModelCard(CENTRAL, GROUP, "model retired"), grace)
    assert archived.status is CardStatus.ARCHIVED
    with pytest.raises(InvalidTransition, match="archived"):
        _edit(world, mei, {**DOC, "caveatsAndRecommendations": "new"})


def test_a_rejection_needs_a_comment_and_returns_the_card_to_draft(world: World, mei: Identity) -> None:
    grace = world.token_for("grace")
    _submitted(world, mei)
    with pytest.raises(ValidationError, match="comment"):
        world.bus.handle(c.RejectModelCard(CENTRAL, GROUP, " "), grace)
    rejected: ModelCard = world.bus.handle(c.RejectModelCard(CENTRAL, GROUP, "add fairness metrics"), grace)
    assert rejected.status is CardStatus.DRAFT and rejected.history[-1].comment == "add fairness metrics"


def test_a_card_document_with_problems_is_refused_naming_each_path(world: World, mei: Identity) -> None:
    bad = {"overview": {"riskRating": "extreme", "owner": 3}, "evaluation": {}}
    with pytest.raises(ValidationError) as refused:
        _edit(world, mei, bad)
    fields = {p["field"] for p in refused.value.details["problems"]}
    assert fields == {"overview.riskRating", "overview.owner", "evaluation"}
    with pytest.raises(NotFound):
        world.bus.handle(c.GetModelCard(CENTRAL, GROUP), mei)


def test_a_card_documents_an_existing_group_of_the_central_account_only(world: World, mei: Identity) -> None:
    with pytest.raises(NotFound, match="no model package group"):
        world.bus.handle(c.EditModelCard(CENTRAL, "nope", DOC, "x"), mei)
    with pytest.raises(ValidationError, match="shared-services"):
        world.bus.handle(c.EditModelCard("ml-dev", "churn", DOC, "x"), world.token_for("lena"))


def test_readers_of_the_central_group_read_its_card_and_others_do_not(world: World) -> None:
    mei, lena = world.token_for("mei"), world.token_for("lena")
    world.bus.handle(c.CreateModelPackageGroup(CENTRAL, "shared", readers=("ml-dev",)), mei)
    world.bus.handle(c.CreateModelPackageGroup(CENTRAL, "private"), mei)
    for group in ("shared", "private"):
        world.bus.handle(c.EditModelCard(CENTRAL, group, DOC, "first"), mei)
    shown: CardView = world.bus.handle(c.GetModelCard(CENTRAL, "shared"), lena)
    assert shown.version == 1
    with pytest.raises(PermissionDenied):
        world.bus.handle(c.GetModelCard(CENTRAL, "private"), lena)


def test_an_earlier_version_is_shown_and_exported_on_request(world: World, mei: Identity) -> None:
    _edit(world, mei)
    _edit(world, mei, {**DOC, "caveatsAndRecommendations": "Retrain monthly."}, "caveats")
    shown: CardView = world.bus.handle(c.GetModelCard(CENTRAL, GROUP, 1), mei)
    assert shown.version == 1
    markdown: CardExport = world.bus.handle(c.ExportModelCard(CENTRAL, GROUP, "markdown", 1), mei)
    assert "version 1 of 2" in markdown.text and markdown.media_type.startswith("text/markdown")
    page: CardExport = world.bus.handle(c.ExportModelCard(CENTRAL, GROUP, "html"), mei)
    assert page.text.startswith("<!DOCTYPE html>") and page.filename == "churn-ml-dev-v2.html"
    with pytest.raises(ValidationError, match="format"):
        world.bus.handle(c.ExportModelCard(CENTRAL, GROUP, "pdf"), mei)
    with pytest.raises(NotFound):
        world.bus.handle(c.GetModelCard(CENTRAL, GROUP, 3), mei)


def test_cards_are_listed_by_group(world: World, mei: Identity) -> None:
    world.bus.handle(c.CreateModelPackageGroup(CENTRAL, "another"), mei)
    for group in (GROUP, "another"):
        world.bus.handle(c.EditModelCard(CENTRAL, group, DOC, "first"), mei)
    page = world.bus.handle(c.ListModelCards(CENTRAL, c.PageRequest(limit=1)), mei)
    assert [card.group for card in page.items] == ["another"] and page.next_after == "another"
    rest = world.bus.handle(c.ListModelCards(CENTRAL, c.PageRequest(after="another")), mei)
    assert [card.group for card in rest.items] == [GROUP]


# --- record_package: the promotion hook ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Promote(c.Command):
    """What the promotion handler will do: register a central package, then document it."""

    package: ModelPackage


def _promote(command: Promote, ctx: HandlerContext) -> tuple[ModelCard, int | None]:
    ctx.audit(Action.REGISTER_PACKAGE, Resource(command.package.crn, "ModelPackage"))
    ctx.uow.registry.add_package(command.package)
    return record_package(ctx, command.package)


def _package(version: int, **extra: Any) -> ModelPackage:
    return ModelPackage(CENTRAL, GROUP, version, ModelFormat.SKOPS, (Artifact("model.skops", 10, "a" * 64),),
                        Lineage("promotion-bot", run="run-1", run_started_by="sam"),
                        datetime(2026, 1, 1, tzinfo=UTC), metrics=(("auc", 0.91),),
                        origin=f"crn:charter:ml-dev:registry:model-package/churn/{version}", **extra)


@pytest.fixture
def promote(world: World, mei: Identity) -> Any:
    world.bus.register(Promote, _promote)
    bot = world.token_for("promotion-bot")
    return lambda package: world.bus.handle(Promote(package), bot)


def test_record_package_creates_a_draft_documenting_the_package(world: World, promote: Any) -> None:
    package = _package(1, description="Gradient boosting on tenure.", tags=(("estimator", "GradientBoostingClassifier"),))
    card, version = promote(package)
    assert (card.status, version, card.latest.author) == (CardStatus.DRAFT, 1, "promotion-bot")
    assert card.latest.package == CRN.parse("crn:charter:ml-shared-services:registry:model-package/churn-ml-dev/1")
    overview = card.latest.content.overview
    assert (overview.description, overview.algorithm) == ("Gradient boosting on tenure.", "GradientBoostingClassifier")
    assert card.latest.evaluation is not None and card.latest.evaluation.metrics == (("auc", 0.91),)
    assert card.latest.training is not None and card.latest.training.origin == package.origin
    event = world.store.data.outbox[-1]
    assert (event.type, event.data["version"], event.data["package"]) == (
        "charter.cards.model-card.state-changed", 1, str(package.crn))


def test_record_package_is_idempotent(world: World, promote: Any) -> None:
    first, _ = promote(_package(1))
    with world.store.uow() as uow:
        ctx = HandlerContext(uow, world.token_for("promotion-bot"), world.bus.authorizer, world.trail,
                             world.clock, world.bus.limits, None)
        again, version = record_package(ctx, _package(1))
        assert (again, version) == (first, 1) and not ctx.audited
    assert len(world.store.data.cards[(CENTRAL, GROUP)].versions) == 1


def test_record_package_adds_a_version_and_keeps_the_approved_one(world: World, mei: Identity,
                                                                   promote: Any) -> None:
    grace = world.token_for("grace")
    _edit(world, mei)
    world.bus.handle(c.SubmitModelCard(CENTRAL, GROUP), mei)
    world.bus.handle(c.ApproveModelCard(CENTRAL, GROUP), grace)
    card, version = promote(_package(1))
    assert (card.status, version, card.approved_version) == (CardStatus.DRAFT, 2, 1)
    assert card.latest.content == card.versions[0].content  # only the automatic sections changed
    assert world.store.data.outbox[-1].data["previous_status"] == "Approved"


def test_record_package_leaves_a_card_under_review_unchanged(world: World, mei: Identity, promote: Any) -> None:
    pending = _submitted(world, mei)
    card, version = promote(_package(1))
    assert (card, version) == (pending, None)


def test_the_example_card_file_is_a_valid_card_document() -> None:
    doc = yaml.safe_load((EXAMPLE.parent / "card.yaml").read_text())
    assert validate_card_document(doc) == []
    assert card_content_from_document(doc).overview.owner == "mei"
