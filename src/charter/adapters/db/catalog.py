"""The catalog's tables as a repository: portfolios, products, immutable versions, shares, grants."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, delete, insert, select, update

from charter.adapters.db import tables as t
from charter.domain.catalog import (
    Grant,
    ImportedPortfolio,
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

pf, pr, pv = t.catalog_portfolios.c, t.catalog_products.c, t.catalog_product_versions.c
sh, gr = t.catalog_shares.c, t.catalog_grants.c

_PORTFOLIO = select(t.catalog_portfolios).where(and_(pf.account == bindparam("a"), pf.name == bindparam("n")))
_PRODUCT = select(t.catalog_products).where(and_(pr.account == bindparam("a"), pr.name == bindparam("n")))
_ALLOCATE = (
    update(t.catalog_products)
    .where(and_(pr.account == bindparam("a"), pr.name == bindparam("n")))
    .values(next_version=pr.next_version + 1, description=bindparam("d"))
    .returning(pr.next_version)
)
_VERSION = select(t.catalog_product_versions).where(
    and_(pv.account == bindparam("a"), pv.product == bindparam("p"), pv.version == bindparam("v")))
_BY_CONTENT = select(t.catalog_product_versions).where(
    and_(pv.account == bindparam("a"), pv.product == bindparam("p"), pv.content_digest == bindparam("d")))
_SHARES = select(t.catalog_shares).where(
    and_(sh.account == bindparam("a"), sh.portfolio == bindparam("p"))).order_by(sh.target)
_GRANTS = select(t.catalog_grants).where(
    and_(gr.account == bindparam("a"), gr.portfolio == bindparam("p"))).order_by(gr.pattern)

# What an account imports, in three statements: the portfolios shared with any of its targets, then
# the grants and the products of those portfolios (each joined through the same shares).
_SHARED = (select(sh.account, sh.portfolio).where(sh.target.in_(bindparam("targets", expanding=True)))
           .distinct().subquery())
_IMPORTED_PORTFOLIOS = (
    select(t.catalog_portfolios)
    .join(_SHARED, and_(_SHARED.c.account == pf.account, _SHARED.c.portfolio == pf.name))
    .order_by(pf.account, pf.name))
_IMPORTED_GRANTS = (
    select(t.catalog_grants)
    .join(_SHARED, and_(_SHARED.c.account == gr.account, _SHARED.c.portfolio == gr.portfolio))
    .order_by(gr.pattern))
_IMPORTED_PRODUCTS = (
    select(t.catalog_products)
    .join(_SHARED, and_(_SHARED.c.account == pr.account, _SHARED.c.portfolio == pr.portfolio))
    .order_by(pr.name))


def _portfolio(row: Row[Any]) -> Portfolio:
    return Portfolio(row.account, row.name, row.description, row.provider)


def _product(row: Row[Any]) -> Product:
    return Product(row.account, row.portfolio, row.name, ProductKind(row.kind), row.description,
                   int(row.next_version) - 1)


def _version(row: Row[Any]) -> ProductVersion:
    spec, source = row.spec, row.source
    return ProductVersion(
        account=row.account, portfolio=row.portfolio, product=row.product, version=row.version,
        files=tuple(ProductFile(f["path"], f["size"], f["sha256"]) for f in row.files),
        spec=ProductSpec(spec["name"], spec["description"], ProductKind(spec["kind"]),
                         spec["parameters"], spec["provisions"]),
        source=Source(SourceKind(source["kind"]), source.get("repository"), source.get("ref"),
                      source.get("commit"), source.get("path")),
        published_by=row.published_by, published_at=row.published_at)


class SqlCatalogRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get_portfolio(self, account: str, name: str) -> Portfolio | None:
        row = self.conn.execute(_PORTFOLIO, {"a": account, "n": name}).first()
        return _portfolio(row) if row else None

    def add_portfolio(self, portfolio: Portfolio, created_at: datetime, created_by: str) -> None:
        self.conn.execute(insert(t.catalog_portfolios).values(
            account=portfolio.account, name=portfolio.name, description=portfolio.description,
            provider=portfolio.provider, created_at=created_at, created_by=created_by))

    def update_portfolio(self, portfolio: Portfolio) -> None:
        self.conn.execute(update(t.catalog_portfolios).where(
            and_(pf.account == portfolio.account, pf.name == portfolio.name)).values(
            description=portfolio.description, provider=portfolio.provider))

    def list_portfolios(self, account: str, after: str | None, limit: int) -> list[Portfolio]:
        q = select(t.catalog_portfolios).where(pf.account == account).order_by(pf.name).limit(limit)
        if after is not None:
            q = q.where(pf.name > after)
        return [_portfolio(r) for r in self.conn.execute(q)]

    def get_product(self, account: str, name: str) -> Product | None:
        row = self.conn.execute(_PRODUCT, {"a": account, "n": name}).first()
        return _product(row) if row else None

    def add_product(self, product: Product, created_at: datetime, created_by: str) -> None:
        self.conn.execute(insert(t.catalog_products).values(
            account=product.account, name=product.name, portfolio=product.portfolio,
            kind=str(product.kind), description=product.description,
            next_version=product.latest_version + 1, created_at=created_at, created_by=created_by))

    def list_products(self, account: str, portfolio: str | None, after: str | None,
                      limit: int) -> list[Product]:
        q = select(t.catalog_products).where(pr.account == account).order_by(pr.name).limit(limit)
        if portfolio is not None:
            q = q.where(pr.portfolio == portfolio)
        if after is not None:
            q = q.where(pr.name > after)
        return [_product(r) for r in self.conn.execute(q)]

    def allocate_version(self, account: str, product: str, description: str) -> int:
        allocated = self.conn.execute(_ALLOCATE, {"a": account, "n": product, "d": description}).scalar_one()
        return int(allocated) - 1

    def add_version(self, version: ProductVersion) -> None:
        s = version.source
        self.conn.execute(insert(t.catalog_product_versions), {
            "account": version.account, "product": version.product, "version": version.version,
            "portfolio": version.portfolio,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in version.files],
            "spec": version.spec.to_document(),
            "source": {"kind": str(s.kind), "repository": s.repository, "ref": s.ref,
                       "commit": s.commit, "path": s.path},
            "content_digest": version.content_digest,
            "published_by": version.published_by, "published_at": version.published_at})

    def get_version(self, account: str, product: str, version: int) -> ProductVersion | None:
        row = self.conn.execute(_VERSION, {"a": account, "p": product, "v": version}).first()
        return _version(row) if row else None

    def list_versions(self, account: str, product: str, after: int | None, limit: int) -> list[ProductVersion]:
        q = (select(t.catalog_product_versions).where(and_(pv.account == account, pv.product == product))
             .order_by(pv.version).limit(limit))
        if after is not None:
            q = q.where(pv.version > after)
        return [_version(r) for r in self.conn.execute(q)]

    def find_version_by_content(self, account: str, product: str, digest: str) -> ProductVersion | None:
        row = self.conn.execute(_BY_CONTENT, {"a": account, "p": product, "d": digest}).first()
        return _version(row) if row else None

    def list_shares(self, account: str, portfolio: str) -> list[Share]:
        rows = self.conn.execute(_SHARES, {"a": account, "p": portfolio})
        return [Share(r.account, r.portfolio, r.target, r.managed_by) for r in rows]

    def add_share(self, share: Share) -> None:
        self.conn.execute(insert(t.catalog_shares).values(
            account=share.account, portfolio=share.portfolio, target=share.target, managed_by=share.managed_by))

    def delete_share(self, share: Share) -> None:
        self.conn.execute(delete(t.catalog_shares).where(and_(
            sh.account == share.account, sh.portfolio == share.portfolio, sh.target == share.target)))

    def list_grants(self, account: str, portfolio: str) -> list[Grant]:
        rows = self.conn.execute(_GRANTS, {"a": account, "p": portfolio})
        return [Grant(r.account, r.portfolio, r.pattern) for r in rows]

    def add_grant(self, grant: Grant) -> None:
        self.conn.execute(insert(t.catalog_grants).values(
            account=grant.account, portfolio=grant.portfolio, pattern=grant.pattern))

    def delete_grant(self, grant: Grant) -> None:
        self.conn.execute(delete(t.catalog_grants).where(and_(
            gr.account == grant.account, gr.portfolio == grant.portfolio, gr.pattern == grant.pattern)))

    def imported(self, targets: Sequence[str], product: str | None = None) -> list[ImportedPortfolio]:
        if not targets:
            return []
        params = {"targets": list(targets)}
        portfolios = [_portfolio(r) for r in self.conn.execute(_IMPORTED_PORTFOLIOS, params)]
        if not portfolios:
            return []
        grants: dict[tuple[str, str], list[Grant]] = defaultdict(list)
        for r in self.conn.execute(_IMPORTED_GRANTS, params):
            grants[(r.account, r.portfolio)].append(Grant(r.account, r.portfolio, r.pattern))
        products: dict[tuple[str, str], list[Product]] = defaultdict(list)
        products_query = _IMPORTED_PRODUCTS if product is None else _IMPORTED_PRODUCTS.where(pr.name == product)
        for r in self.conn.execute(products_query, params):
            products[(r.account, r.portfolio)].append(_product(r))
        return [ImportedPortfolio(p, tuple(grants[(p.account, p.name)]), tuple(products[(p.account, p.name)]))
                for p in portfolios]
