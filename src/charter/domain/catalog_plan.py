"""The catalog as ``charter apply`` declares it: portfolios with exactly the shares and grants the
file gives them. Only the portfolios a file declares are managed; shares something else made (a
vended account's blueprint: ``managed_by`` set) are left alone."""

from __future__ import annotations

from dataclasses import dataclass

from charter.domain.catalog import Portfolio
from charter.domain.plan import Change, ChangeAction


@dataclass(frozen=True, slots=True)
class DeclaredPortfolio:
    portfolio: Portfolio
    shares: frozenset[str]
    grants: frozenset[str]
    products: tuple[str, ...] = ()
    """Folders, relative to the file: the CLI publishes them; the server never reads them."""

    @property
    def key(self) -> str:
        return f"{self.portfolio.account}/{self.portfolio.name}"


def _portfolio_fields(p: Portfolio) -> dict[str, str]:
    return {"account": p.account, "name": p.name, "description": p.description, "provider": p.provider}


def diff_portfolios(current: dict[str, DeclaredPortfolio], desired: dict[str, DeclaredPortfolio]) -> list[Change]:
    """``current`` holds, for each declared portfolio that exists, its file-managed shares and grants."""
    changes: list[Change] = []
    for key in sorted(desired):
        want, have = desired[key], current.get(key)
        after = _portfolio_fields(want.portfolio)
        if have is None:
            changes.append(Change("portfolio", ChangeAction.CREATE, key, after=after))
        elif (before := _portfolio_fields(have.portfolio)) != after:
            changes.append(Change("portfolio", ChangeAction.UPDATE, key, before=before, after=after))
        had_shares = have.shares if have else frozenset()
        had_grants = have.grants if have else frozenset()
        for target in sorted(want.shares - had_shares):
            changes.append(Change("portfolio-share", ChangeAction.CREATE, f"{key} with {target}",
                                  after={"portfolio": key, "target": target}))
        for target in sorted(had_shares - want.shares):
            changes.append(Change("portfolio-share", ChangeAction.DELETE, f"{key} with {target}",
                                  before={"portfolio": key, "target": target}))
        for pattern in sorted(want.grants - had_grants):
            changes.append(Change("portfolio-grant", ChangeAction.CREATE, f"{key} to {pattern}",
                                  after={"portfolio": key, "pattern": pattern}))
        for pattern in sorted(had_grants - want.grants):
            changes.append(Change("portfolio-grant", ChangeAction.DELETE, f"{key} to {pattern}",
                                  before={"portfolio": key, "pattern": pattern}))
    return changes
