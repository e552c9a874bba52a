"""The per-process cache of tokens, principals, bindings, accounts and groups: served only under
the org state revision it was read at, so every change takes effect on the next request, in this
process and in another one sharing the database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from charter.bootstrap import Platform, bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.errors import NotFound, PermissionDenied, Unauthenticated
from tests.conftest import EXAMPLE
from tests.integration.conftest import Org

LENA_BINDING = "  - {principal: lena, account: ml-dev, role: lead-data-scientist}\n"


@pytest.fixture
def second_process(settings: Settings) -> Iterator[Platform]:
    """Another server process on the same database: its own engine, write lock and cache."""
    other = bootstrap(settings)
    try:
        yield other
    finally:
        other.close()


def _statements(platform: Platform) -> list[str]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(platform.engine, "before_cursor_execute", record)
    return seen


def test_a_repeated_request_reads_no_token_principal_binding_or_account_rows(org: Org) -> None:
    lena = org.bearer("lena")
    org.bus.handle(c.ListModelPackageGroups("ml-dev", c.PageRequest(None, 10)), bearer=lena)
    seen = _statements(org.platform)
    org.bus.handle(c.ListModelPackageGroups("ml-dev", c.PageRequest(None, 10)), bearer=lena)
    tables = " ".join(seen)
    assert "FROM organization" in tables
    assert "FROM principals" not in tables and "FROM role_bindings" not in tables
    assert "FROM accounts" not in tables and "FROM api_tokens" not in tables


def test_a_removed_binding_is_refused_on_the_next_request(org: Org) -> None:
    lena = org.bearer("lena")
    group = c.CreateModelPackageGroup("ml-dev", "churn", "", (), ())
    org.bus.handle(c.ListModelPackageGroups("ml-dev", c.PageRequest(None, 10)), bearer=lena)  # cached
    org.bus.handle(c.ApplyOrg(EXAMPLE.read_text().replace(LENA_BINDING, "")), org.admin)
    with pytest.raises(PermissionDenied):
        org.bus.handle(group, bearer=lena)


def test_a_binding_removed_by_another_process_is_refused_on_the_next_request(
        org: Org, second_process: Platform) -> None:
    lena = org.bearer("lena")
    listing = c.ListModelPackageGroups("ml-dev", c.PageRequest(None, 10))
    org.bus.handle(listing, bearer=lena)
    second_process.bus.handle(listing, bearer=lena)  # both processes have lena's bindings cached
    org.bus.handle(c.ApplyOrg(EXAMPLE.read_text().replace(LENA_BINDING, "")), org.admin)
    with pytest.raises(PermissionDenied):
        second_process.bus.handle(listing, bearer=lena)


def test_a_binding_added_by_another_process_is_granted_on_the_next_request(
        org: Org, second_process: Platform) -> None:
    without = EXAMPLE.read_text().replace(LENA_BINDING, "")
    org.bus.handle(c.ApplyOrg(without), org.admin)
    lena = org.bearer("lena")
    listing = c.ListModelPackageGroups("ml-dev", c.PageRequest(None, 10))
    with pytest.raises(PermissionDenied):
        second_process.bus.handle(listing, bearer=lena)
    org.bus.handle(c.ApplyOrg(EXAMPLE.read_text()), org.admin)
    assert second_process.bus.handle(listing, bearer=lena).items == []


def test_a_token_revoked_in_another_process_is_refused_on_the_next_request(
        org: Org, second_process: Platform) -> None:
    issued = org.bus.handle(c.CreateToken("sam"), org.admin)
    second_process.bus.authenticate(issued.bearer)
    org.bus.handle(c.RevokeToken(issued.token.id), org.admin)
    with pytest.raises(Unauthenticated):
        second_process.bus.authenticate(issued.bearer)


def test_a_refused_change_leaves_the_cached_bindings_in_force(org: Org) -> None:
    lena = org.bearer("lena")
    listing = c.ListModelPackageGroups("ml-dev", c.PageRequest(None, 10))
    org.bus.handle(listing, bearer=lena)
    bad = EXAMPLE.read_text().replace(LENA_BINDING, "").replace("ou: deployments", "ou: nowhere", 1)
    with pytest.raises(Exception):  # noqa: B017, PT011 - refused as a whole, whatever the type
        org.bus.handle(c.ApplyOrg(bad), org.admin)
    assert org.bus.handle(listing, bearer=lena).items == []


def test_a_repeated_registry_request_reads_no_group_row(org: Org) -> None:
    lena = org.bearer("lena")
    org.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn", "", (), ()), bearer=lena)
    org.bus.handle(c.GetModelPackageGroup("ml-dev", "churn"), bearer=lena)
    seen = _statements(org.platform)
    org.bus.handle(c.GetModelPackageGroup("ml-dev", "churn"), bearer=lena)
    assert "FROM model_package_groups" not in " ".join(seen)


def test_a_group_created_by_another_process_is_found_on_the_next_request(
        org: Org, second_process: Platform) -> None:
    lena = org.bearer("lena")
    with pytest.raises(NotFound):
        org.bus.handle(c.GetModelPackageGroup("ml-dev", "churn"), bearer=lena)  # remembered as missing
    second_process.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn", "", (), ()), bearer=lena)
    assert org.bus.handle(c.GetModelPackageGroup("ml-dev", "churn"), bearer=lena).name == "churn"
