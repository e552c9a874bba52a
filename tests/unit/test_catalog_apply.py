"""Portfolios declared in charter.yaml: created by apply, their shares and grants kept exactly as
the file says (only for the portfolios it declares), shown in the plan."""

from __future__ import annotations

import pytest

from charter.domain import commands as c
from charter.domain.catalog import Grant, Portfolio, Share
from charter.domain.catalog_plan import DeclaredPortfolio, diff_portfolios
from charter.errors import ValidationError
from tests.unit.conftest import World

SHARED = "ml-shared-services"


def _shares(world: World, name: str) -> set[str]:
    return {s.target for s in world.store.data.shares if (s.account, s.portfolio) == (SHARED, name)}


def _grants(world: World, name: str) -> set[str]:
    return {g.pattern for g in world.store.data.grants if (g.account, g.portfolio) == (SHARED, name)}


def test_apply_creates_the_declared_portfolios_with_their_shares_and_grants(world: World) -> None:
    assert {n for (a, n) in world.store.data.portfolios if a == SHARED} == {"ml-projects", "ml-admin"}
    assert _shares(world, "ml-projects") == {"ou:workloads", SHARED}
    assert _grants(world, "ml-projects") == {"lead-data-scientist", "ml-engineer"}
    assert _shares(world, "ml-admin") == {"ou:workloads"}
    assert _grants(world, "ml-admin") == {"lead-data-scientist"}
    assert "charter.catalog.portfolio.created" in {e.type for e in world.store.data.outbox}


def test_the_plan_shows_share_and_grant_changes_and_makes_none(world: World, example_text: str) -> None:
    text = example_text.replace("grants: [lead-data-scientist, ml-engineer]", "grants: [ml-engineer, '*-scientist']")
    planned = world.bus.handle(c.PlanOrg(text), world.admin)
    assert [(ch.kind, str(ch.action), ch.name) for ch in planned.changes] == [
        ("portfolio-grant", "create", f"{SHARED}/ml-projects to *-scientist"),
        ("portfolio-grant", "delete", f"{SHARED}/ml-projects to lead-data-scientist")]
    assert _grants(world, "ml-projects") == {"lead-data-scientist", "ml-engineer"}


def test_a_share_made_by_hand_on_a_declared_portfolio_is_removed_by_the_next_apply(
        world: World, example_text: str) -> None:
    world.bus.handle(c.SharePortfolio(SHARED, "ml-admin", "ml-test"), world.token_for("priya"))
    result = world.bus.handle(c.ApplyOrg(example_text), world.admin)
    assert [(ch.kind, str(ch.action)) for ch in result.changes] == [("portfolio-share", "delete")]
    assert _shares(world, "ml-admin") == {"ou:workloads"}


def test_a_portfolio_the_file_does_not_declare_is_left_alone(world: World, example_text: str) -> None:
    priya = world.token_for("priya")
    world.bus.handle(c.CreatePortfolio(SHARED, "experiments"), priya)
    world.bus.handle(c.SharePortfolio(SHARED, "experiments", "ml-test"), priya)
    assert world.bus.handle(c.ApplyOrg(example_text), world.admin).changes == []
    assert _shares(world, "experiments") == {"ml-test"}


def test_a_portfolio_dropped_from_the_file_keeps_its_shares(world: World, example_text: str) -> None:
    start = example_text.index("  - account: ml-shared-services\n    name: ml-admin")
    end = example_text.index("# Account vending")
    result = world.bus.handle(c.ApplyOrg(example_text[:start] + "\n" + example_text[end:]), world.admin)
    assert result.changes == []
    assert _shares(world, "ml-admin") == {"ou:workloads"}


@pytest.mark.parametrize(("replacement", "field"), [
    ("shares: [ou:nowhere]", f"portfolios[{SHARED}/ml-admin].shares"),
    ("shares: [Not A Target]", f"portfolios[{SHARED}/ml-admin].shares[0]"),
])
def test_an_invalid_share_is_refused_by_its_path(world: World, example_text: str, replacement: str,
                                                 field: str) -> None:
    text = example_text.replace("    shares: [ou:workloads]\n", f"    {replacement}\n")
    with pytest.raises(ValidationError) as refused:
        world.bus.handle(c.ApplyOrg(text), world.admin)
    assert field in [p["field"] for p in refused.value.details["problems"]]


def test_a_grant_that_is_not_a_role_pattern_is_refused_by_its_path(world: World, example_text: str) -> None:
    text = example_text.replace("grants: [lead-data-scientist]\n", "grants: [Lead/Scientist]\n")
    with pytest.raises(ValidationError) as refused:
        world.bus.handle(c.ApplyOrg(text), world.admin)
    assert [p["field"] for p in refused.value.details["problems"]] == [f"portfolios[{SHARED}/ml-admin].grants[0]"]


def test_the_owning_account_named_in_the_shares_imports_its_portfolio(world: World) -> None:
    view = world.bus.handle(c.ListImportedPortfolios(SHARED), world.token_for("mei"))
    assert [e.imported.portfolio.name for e in view.portfolios] == ["ml-projects"]  # type: ignore[attr-defined]


def test_portfolio_diffs_name_each_share_and_grant() -> None:
    p = Portfolio(SHARED, "p", "old")
    now = {f"{SHARED}/p": DeclaredPortfolio(p, frozenset({"ou:a", "b"}), frozenset({"x"}))}
    want = {f"{SHARED}/p": DeclaredPortfolio(Portfolio(SHARED, "p", "new"), frozenset({"b", "c"}), frozenset({"x"})),
            f"{SHARED}/q": DeclaredPortfolio(Portfolio(SHARED, "q"), frozenset(), frozenset({"y"}))}
    assert [(ch.kind, str(ch.action), ch.name) for ch in diff_portfolios(now, want)] == [
        ("portfolio", "update", f"{SHARED}/p"),
        ("portfolio-share", "create", f"{SHARED}/p with c"),
        ("portfolio-share", "delete", f"{SHARED}/p with ou:a"),
        ("portfolio", "create", f"{SHARED}/q"),
        ("portfolio-grant", "create", f"{SHARED}/q to y")]
    assert Share(SHARED, "p", "b", "blueprint:x") == Share(SHARED, "p", "b")  # the manager is no part of identity
    assert Grant(SHARED, "p", "x") in {Grant(SHARED, "p", "x")}
