"""Model cards on each backend: every field round trips, versions are never rewritten, stale saves
are refused, and the promotion hook and the REST API work on a real store."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from charter.adapters.db import tables as t
from charter.bootstrap import Platform
from charter.domain import commands as c
from charter.domain.authz import Action, Resource
from charter.domain.cards import (
    BusinessDetails,
    CardContent,
    CardStatus,
    IntendedUses,
    ModelCard,
    Overview,
    RiskRating,
)
from charter.domain.registry import Artifact, Lineage, ModelFormat, ModelPackage, ModelPackageGroup
from charter.errors import Conflict
from charter.services.handlers.cards import record_package
from charter.services.messagebus import HandlerContext
from tests.integration.conftest import Org, auth

T = datetime(2026, 1, 1, 9, 30, 15, 123456, tzinfo=UTC)
CENTRAL, GROUP = "ml-shared-services", "churn-ml-dev"
CONTENT = CardContent(
    overview=Overview(owner="mei", description="Predicts churn.\n\nSecond paragraph.", problem_type="binary",
                      algorithm="gradient boosting", risk_rating=RiskRating.HIGH, risk_explanation="Offers."),
    intended_uses=IntendedUses(purpose="Retention", users=("retention team", "analysts"),
                               out_of_scope=("credit decisions",)),
    business_details=BusinessDetails(business_problem="Churn costs", stakeholders=("sales",),
                                     line_of_business="consumer"),
    ethical_considerations="Tenure tracks age — ünïcode kept.",
    caveats_and_recommendations="Retrain quarterly.",
)


def _package(version: int = 1) -> ModelPackage:
    return ModelPackage(
        CENTRAL, GROUP, version, ModelFormat.SKOPS,
        (Artifact("model.skops", 1234, "b" * 64), Artifact("metrics.json", 10, "a" * 64)),
        Lineage("promotion-bot", run="run-9", run_started_by="sam",
                datasets=("crn:charter:data-governance:data:dataset/bank/1",), product_version="train/1.2",
                parameters=(("learning_rate", "0.1"), ("max_depth", "6"))),
        T - timedelta(days=1), metrics=(("accuracy", 0.88), ("auc", 0.9125)),
        description="GBM", tags=(("estimator", "GradientBoostingClassifier"),),
        origin=f"crn:charter:ml-dev:registry:model-package/churn/{version + 3}")


def _group(platform: Platform, name: str = GROUP) -> None:
    with platform.bus.uow_factory() as uow:
        uow.registry.add_group(ModelPackageGroup(CENTRAL, name, readers=("ml-prod",)), T, "mei")
        uow.commit()


def _save(platform: Platform, card: ModelCard, *, new: bool = False) -> None:
    with platform.bus.uow_factory() as uow:
        (uow.cards.add if new else uow.cards.save)(card)
        uow.commit()


def _get(platform: Platform, group: str = GROUP) -> ModelCard | None:
    with platform.bus.uow_factory(readonly=True) as uow:
        return uow.cards.get(CENTRAL, group)


def _full_card() -> ModelCard:
    card = ModelCard.create(CENTRAL, GROUP, "mei", T, CONTENT, _package(1), "Created from the promotion")
    card = card.submit("mei", T + timedelta(minutes=1), "ready").reject("grace", T + timedelta(minutes=2), "add owner")
    card = card.edit("mei", T + timedelta(minutes=3), "owner", content=CardContent(overview=Overview(owner="priya")))
    card = card.submit("mei", T + timedelta(minutes=4)).approve("grace", T + timedelta(minutes=5), "ok")
    return card.edit("mei", T + timedelta(minutes=6), "v3 for package 2", package=_package(2))


def test_a_card_round_trips_with_every_field_of_every_version(org: Org, platform: Platform) -> None:
    _group(platform)
    card = ModelCard.create(CENTRAL, GROUP, "mei", T, CONTENT, _package(1), "Created from the promotion")
    _save(platform, card, new=True)
    assert _get(platform) == card
    for step in (lambda x: x.submit("mei", T + timedelta(minutes=1), "ready"),
                 lambda x: x.reject("grace", T + timedelta(minutes=2), "add owner"),
                 lambda x: x.edit("mei", T + timedelta(minutes=3), "owner",
                                  content=CardContent(overview=Overview(owner="priya"))),
                 lambda x: x.submit("mei", T + timedelta(minutes=4)),
                 lambda x: x.approve("grace", T + timedelta(minutes=5), "ok"),
                 lambda x: x.edit("mei", T + timedelta(minutes=6), "v3 for package 2", package=_package(2))):
        card = step(card)
        _save(platform, card)
        assert _get(platform) == card
    assert card == _full_card() and (card.status, card.approved_version, len(card.versions)) == (
        CardStatus.DRAFT, 2, 3)


def test_a_version_row_is_never_rewritten(org: Org, platform: Platform) -> None:
    _group(platform)
    card = ModelCard.create(CENTRAL, GROUP, "mei", T, CONTENT, summary="first")
    _save(platform, card, new=True)
    with platform.engine.connect() as conn:
        before = conn.execute(select(t.model_card_versions)).all()
    _save(platform, card.edit("mei", T, "second", package=_package(1)))
    with platform.engine.connect() as conn:
        after = conn.execute(select(t.model_card_versions).order_by(t.model_card_versions.c.version)).all()
    assert after[:1] == before and [r.version for r in after] == [1, 2]
    assert after[1].package == "crn:charter:ml-shared-services:registry:model-package/churn-ml-dev/1"


def test_a_stale_save_is_refused_and_changes_nothing(org: Org, platform: Platform) -> None:
    _group(platform)
    card = ModelCard.create(CENTRAL, GROUP, "mei", T, CONTENT, summary="first")
    _save(platform, card, new=True)
    stale = _get(platform)
    assert stale is not None
    submitted = stale.submit("mei", T)
    _save(platform, submitted)
    for late in (stale.edit("sam", T, "late edit", content=CardContent()), stale.submit("sam", T)):
        with pytest.raises(Conflict):
            _save(platform, late)
    assert _get(platform) == submitted


def test_an_approved_card_archived_meanwhile_refuses_a_stale_edit(org: Org, platform: Platform) -> None:
    """The stale edit adds what a live one would (a version and a status change): only the
    history tells them apart."""
    _group(platform)
    approved = ModelCard.create(CENTRAL, GROUP, "mei", T, CONTENT, summary="first").submit("mei", T).approve(
        "grace", T)
    _save(platform, approved, new=True)
    _save(platform, approved.archive("grace", T, "retired"))
    with pytest.raises(Conflict):
        _save(platform, approved.edit("mei", T, "late", content=CardContent()))
    stored = _get(platform)
    assert stored is not None and stored.status is CardStatus.ARCHIVED


def test_of_two_concurrent_edits_of_one_read_exactly_one_is_saved(org: Org, platform: Platform) -> None:
    _group(platform)
    card = ModelCard.create(CENTRAL, GROUP, "mei", T, CONTENT, summary="first")
    _save(platform, card, new=True)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def edit(author: str) -> None:
        barrier.wait()
        try:
            _save(platform, card.edit(author, T, f"by {author}", content=CardContent(
                overview=Overview(owner=author))))
            outcomes.append("saved")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=edit, args=(who,)) for who in ("mei", "sam")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "saved"]
    stored = _get(platform)
    assert stored is not None and len(stored.versions) == 2


def test_a_second_card_for_a_group_is_a_conflict(org: Org, platform: Platform) -> None:
    _group(platform)
    card = ModelCard.create(CENTRAL, GROUP, "mei", T, CONTENT, summary="first")
    _save(platform, card, new=True)
    with pytest.raises(Conflict):
        _save(platform, card, new=True)


def test_cards_are_listed_in_group_order_with_their_versions(org: Org, platform: Platform) -> None:
    for name in ("b-model", "a-model", "c-model"):
        _group(platform, name)
        card = ModelCard.create(CENTRAL, name, "mei", T, CONTENT, summary="first")
        _save(platform, card, new=True)
        _save(platform, card.edit("mei", T, "second", content=CardContent()))
    with platform.bus.uow_factory(readonly=True) as uow:
        listed = uow.cards.list(CENTRAL, "a-model", 10)
    assert [(x.group, len(x.versions)) for x in listed] == [("b-model", 2), ("c-model", 2)]


# --- the promotion hook on a real store --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Promote(c.Command):
    package: ModelPackage


def _promote(command: Promote, ctx: HandlerContext) -> tuple[ModelCard, int | None]:
    ctx.audit(Action.REGISTER_PACKAGE, Resource(command.package.crn, "ModelPackage"))
    if ctx.uow.registry.get_package(CENTRAL, GROUP, command.package.version) is None:
        ctx.uow.registry.add_package(command.package)
    return record_package(ctx, command.package)


def test_record_package_creates_then_versions_the_card_idempotently(org: Org, platform: Platform) -> None:
    _group(platform)
    platform.bus.register(Promote, _promote)
    bot = org.identity("promotion-bot")
    card, version = platform.bus.handle(Promote(_package(1)), bot)
    assert (version, card.latest.content.overview.algorithm) == (1, "GradientBoostingClassifier")
    again, same = platform.bus.handle(Promote(_package(1)), bot)
    assert (again, same) == (card, 1)
    second, number = platform.bus.handle(Promote(_package(2)), bot)
    assert number == 2 and second.latest.package == _package(2).crn
    assert _get(platform) == second
    with platform.engine.connect() as conn:
        events = conn.execute(select(t.outbox.c.data).where(
            t.outbox.c.type == "charter.cards.model-card.state-changed")).scalars().all()
    assert [e["version"] for e in events] == [1, 2]


def test_a_card_of_many_versions_gains_one_reading_only_its_latest(org: Org, platform: Platform) -> None:
    """Documenting one more package reads the card's head and latest version, finds a package it
    already documents by one lookup, and leaves every older version as it was."""
    _group(platform)
    platform.bus.register(Promote, _promote)
    bot = org.identity("promotion-bot")
    for number in range(1, 6):
        platform.bus.handle(Promote(_package(number)), bot)
    before = _get(platform)
    assert before is not None and before.count == 5
    with platform.bus.uow_factory(readonly=True) as uow:
        latest = uow.cards.get_latest(CENTRAL, GROUP)
        assert uow.cards.documenting(CENTRAL, GROUP, str(_package(2).crn)) == 2
        assert uow.cards.documenting(CENTRAL, GROUP, str(_package(9).crn)) is None
    assert latest is not None and (latest.first, latest.count, latest.versions) == (5, 5, before.versions[-1:])
    with pytest.raises(LookupError):
        latest.version(4)  # not read, and never made up
    again, same = platform.bus.handle(Promote(_package(2)), bot)
    assert same == 2 and again.count == 5
    sixth, number = platform.bus.handle(Promote(_package(6)), bot)
    assert number == 6 and sixth.latest.package == _package(6).crn
    after = _get(platform)
    assert after is not None and after.versions[:5] == before.versions and after.latest == sixth.latest
    assert [v.number for v in after.versions] == [1, 2, 3, 4, 5, 6]


# --- the REST API ------------------------------------------------------------------------------------

BASE = f"/api/v1/accounts/{CENTRAL}/cards/{GROUP}"


def _post(api: TestClient, org: Org, who: str, path: str, body: dict[str, Any]) -> Any:
    return api.post(BASE + path, json=body, headers=auth(org.bearer(who)))


def test_the_review_runs_through_the_api(api: TestClient, org: Org, platform: Platform) -> None:
    _group(platform)
    doc = {"overview": {"owner": "mei", "riskRating": "low"}}
    created = _post(api, org, "mei", "/versions", {"document": doc, "summary": "first", "expected_version": 0})
    assert created.status_code == 201 and created.json()["document"]["overview"]["riskRating"] == "low"
    stale = _post(api, org, "mei", "/versions", {"document": {}, "summary": "x", "expected_version": 0})
    assert stale.status_code == 409 and stale.json()["error"]["type"] == "Conflict"
    assert _post(api, org, "mei", "/submit", {}).json()["status"] == "PendingReview"
    refused = _post(api, org, "mei", "/approve", {})
    assert refused.status_code == 403
    approved = _post(api, org, "grace", "/approve", {"comment": "ok", "version": 1})
    assert approved.status_code == 200 and approved.json()["approved_version"] == 1
    markdown = api.get(BASE + "/export", params={"format": "markdown"}, headers=auth(org.bearer("grace")))
    assert markdown.headers["content-type"].startswith("text/markdown") and "# Model card" in markdown.text
    page = api.get(BASE + "/export", params={"format": "html"}, headers=auth(org.bearer("grace")))
    assert page.headers["content-type"].startswith("text/html")
    listed = api.get(f"/api/v1/accounts/{CENTRAL}/cards", headers=auth(org.bearer("grace"))).json()
    assert [x["group"] for x in listed["items"]] == [GROUP]


def test_a_bad_document_is_refused_with_each_problem_by_path(api: TestClient, org: Org, platform: Platform) -> None:
    _group(platform)
    response = _post(api, org, "mei", "/versions", {"document": {"overview": {"riskRating": "huge"},
                                                                 "trainingDetails": {}}})
    assert response.status_code == 400
    fields = [p["field"] for p in response.json()["error"]["details"]["problems"]]
    assert fields == ["overview.riskRating", "trainingDetails"]
