"""The catalog's repository on each backend: round trips, and an import view whose cost does not
grow with the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from charter.bootstrap import Platform
from charter.domain import commands as c
from charter.domain.catalog import (
    Grant,
    Portfolio,
    Product,
    ProductFile,
    ProductKind,
    ProductSpec,
    ProductVersion,
    Share,
    Source,
    SourceKind,
)
from charter.services.handlers.catalog import Imported
from tests.integration.conftest import Org

T = datetime(2026, 1, 1, tzinfo=UTC)
SHARED = "ml-shared-services"
SPEC = ProductSpec("train", "Train a model", ProductKind.PROJECT,
                   {"type": "object", "properties": {"threshold": {"type": "number", "default": 0.7}}},
                   {"modelPackageGroup": {"name": "{{project}}", "readers": ["ml-shared-services"]}})


def _version(number: int, digest: str = "a" * 64) -> ProductVersion:
    return ProductVersion(SHARED, "ml-templates", "train", number,
                          (ProductFile("product.yaml", 120, digest), ProductFile("seed/train.py", 7, "b" * 64)),
                          SPEC, Source(SourceKind.GIT, "https://git.example/t.git", "main", "c" * 40, "templates/t"),
                          "priya", T)


def _portfolio_with_product(platform: Platform) -> None:
    with platform.bus.uow_factory() as uow:
        uow.catalog.add_portfolio(Portfolio(SHARED, "ml-templates", "Projects", "Platform team"), T, "priya")
        uow.catalog.add_product(Product(SHARED, "ml-templates", "train", ProductKind.PROJECT, "Train"), T, "priya")
        uow.commit()


def test_a_product_version_round_trips_with_its_manifest_spec_and_source(org: Org, platform: Platform) -> None:
    _portfolio_with_product(platform)
    with platform.bus.uow_factory() as uow:
        number = uow.catalog.allocate_version(SHARED, "train", "Train a model")
        uow.catalog.add_version(_version(number))
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert uow.catalog.get_version(SHARED, "train", 1) == _version(1)
        assert uow.catalog.find_version_by_content(SHARED, "train", _version(1).content_digest) == _version(1)
        assert uow.catalog.get_product(SHARED, "train") == Product(
            SHARED, "ml-templates", "train", ProductKind.PROJECT, "Train a model", latest_version=1)
        assert uow.catalog.list_versions(SHARED, "train", None, 10) == [_version(1)]


def test_the_same_files_cannot_be_stored_twice_for_a_product(org: Org, platform: Platform) -> None:
    _portfolio_with_product(platform)
    with platform.bus.uow_factory() as uow:
        uow.catalog.add_version(_version(uow.catalog.allocate_version(SHARED, "train", "")))
        uow.commit()
    with platform.bus.uow_factory() as uow, pytest.raises(IntegrityError):
        uow.catalog.add_version(_version(uow.catalog.allocate_version(SHARED, "train", "")))


def test_versions_are_numbered_without_gaps_after_a_rollback(org: Org, platform: Platform) -> None:
    _portfolio_with_product(platform)
    with platform.bus.uow_factory() as uow:
        assert uow.catalog.allocate_version(SHARED, "train", "") == 1  # rolled back: the number returns
    with platform.bus.uow_factory() as uow:
        assert uow.catalog.allocate_version(SHARED, "train", "") == 1


def test_shares_and_grants_round_trip_and_delete(org: Org, platform: Platform) -> None:
    _portfolio_with_product(platform)
    share, grant = Share(SHARED, "ml-templates", "ou:workloads"), Grant(SHARED, "ml-templates", "*-data-scientist")
    with platform.bus.uow_factory() as uow:
        uow.catalog.add_share(share)
        uow.catalog.add_share(Share(SHARED, "ml-templates", "ml-test"))
        uow.catalog.add_grant(grant)
        uow.commit()
    with platform.bus.uow_factory() as uow:
        assert uow.catalog.list_shares(SHARED, "ml-templates") == [Share(SHARED, "ml-templates", "ml-test"), share]
        assert uow.catalog.list_grants(SHARED, "ml-templates") == [grant]
        [found] = [x for x in uow.catalog.imported(["ml-dev", "ou:workloads"]) if x.portfolio.name == "ml-templates"]
        assert (found.portfolio.name, found.grants, [p.name for p in found.products]) == (
            "ml-templates", (grant,), ["train"])
        uow.catalog.delete_share(share)
        uow.catalog.delete_grant(grant)
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert "ml-templates" not in [x.portfolio.name for x in uow.catalog.imported(["ml-dev", "ou:workloads"])]
        assert uow.catalog.list_grants(SHARED, "ml-templates") == []


def _catalog(platform: Platform, portfolios: int, products_each: int) -> None:
    """``portfolios`` portfolios, half shared with ou:workloads and half with ml-test, each granted
    to lead data scientists on every other one, with ``products_each`` products apiece."""
    with platform.bus.uow_factory() as uow:
        for i in range(portfolios):
            name = f"portfolio-{i}"
            uow.catalog.add_portfolio(Portfolio(SHARED, name), T, "priya")
            uow.catalog.add_share(Share(SHARED, name, "ou:workloads" if i % 2 == 0 else "ml-test"))
            uow.catalog.add_grant(Grant(SHARED, name, "lead-data-scientist" if i % 4 == 0 else "ml-engineer"))
            for j in range(products_each):
                uow.catalog.add_product(Product(SHARED, name, f"product-{i}-{j}", ProductKind.PROJECT), T, "priya")
        uow.commit()


@contextmanager
def _statements(platform: Platform) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(platform.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(platform.engine, "before_cursor_execute", count)


def _imported_statements(org: Org, platform: Platform) -> tuple[int, Imported]:
    """The statements of one imported view, and the view without the example's own portfolios."""
    lena = org.identity("lena")
    platform.bus.handle(c.ListImportedPortfolios("ml-dev"), lena)  # policies compiled, caches warm
    with _statements(platform) as seen:
        view: Imported = platform.bus.handle(c.ListImportedPortfolios("ml-dev"), lena)
    mine = tuple(e for e in view.portfolios if e.imported.portfolio.name.startswith("portfolio-"))
    return len(seen), replace(view, portfolios=mine)


def test_imported_issues_the_same_statements_for_1000_products_and_200_shares_as_for_one(
        org: Org, platform: Platform) -> None:
    _catalog(platform, portfolios=2, products_each=1)
    small, view = _imported_statements(org, platform)
    assert len(view.portfolios) == 1
    with platform.bus.uow_factory() as uow:
        for j in range(1, 9):  # portfolio-1 is shared with ml-test only: 1000 products in all
            uow.catalog.add_product(Product(SHARED, "portfolio-1", f"product-1-{j}", ProductKind.PROJECT), T, "priya")
        for i in range(2, 200):
            name = f"portfolio-{i}"
            uow.catalog.add_portfolio(Portfolio(SHARED, name), T, "priya")
            uow.catalog.add_share(Share(SHARED, name, "ou:workloads" if i % 2 == 0 else "ml-test"))
            uow.catalog.add_grant(Grant(SHARED, name, "lead-data-scientist" if i % 4 == 0 else "ml-engineer"))
            for j in range(5):
                uow.catalog.add_product(Product(SHARED, name, f"product-{i}-{j}", ProductKind.PROJECT), T, "priya")
        uow.commit()
    with platform.bus.uow_factory(readonly=True) as uow:
        assert len(uow.catalog.list_products(SHARED, None, None, 5000)) == 1000
    large, view = _imported_statements(org, platform)
    assert large == small
    assert len(view.portfolios) == 100
    launchable = [p.name for e in view.portfolios for p in e.launchable]
    assert len(launchable) == 1 + 49 * 5 and "product-0-0" in launchable
