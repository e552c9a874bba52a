"""The template catalog: portfolios, publishing product versions, shares, grants, and what an
account imports.

Publishing takes two messages. ``UnpackProductArchive`` (a Transfer: no write transaction) checks
the whole archive and its product.yaml, then stores each file content-addressed in the portfolio
account's artifact store; ``PublishProductVersion`` (a short command) checks those blobs are there,
reads product.yaml back from the store, and records the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charter.domain import commands as c
from charter.domain.authz import Action, Resource
from charter.domain.catalog import (
    MAX_FILE_BYTES,
    MAX_PRODUCT_FILE_BYTES,
    MAX_TEXT,
    PRODUCT_FILE,
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
    check_grant_pattern,
    check_manifest,
    check_share_target,
    content_digest,
    share_targets,
)
from charter.domain.crn import CRN
from charter.domain.events import Event, event_type
from charter.domain.names import check_name
from charter.domain.org import Account, OrgState
from charter.domain.registry import check_artifact_path
from charter.errors import Conflict, NotFound, PermissionDenied, ValidationError
from charter.services import catalog_archive as archive
from charter.services.catalog_spec import load_product
from charter.services.handlers.registry import (
    Download,
    artifact_store,
    reader_accounts,
)
from charter.services.messagebus import HandlerContext
from charter.services.ports import Page, paginate


@dataclass(frozen=True, slots=True)
class UnpackedProduct:
    """What an archive held, stored and checked; publish it with PublishProductVersion."""

    account: str
    portfolio: str
    spec: ProductSpec
    files: tuple[ProductFile, ...]

    @property
    def content_digest(self) -> str:
        return content_digest(self.files)


@dataclass(frozen=True, slots=True)
class PortfolioDetail:
    portfolio: Portfolio
    shares: tuple[Share, ...]
    grants: tuple[Grant, ...]


@dataclass(frozen=True, slots=True)
class ImportedEntry:
    imported: ImportedPortfolio
    launchable: tuple[Product, ...]


@dataclass(frozen=True, slots=True)
class Imported:
    account: str
    roles: tuple[str, ...]
    portfolios: tuple[ImportedEntry, ...]


def _attrs(account: Account) -> dict[str, Any]:
    return {"account_kind": str(account.kind), "stage": str(account.stage or "")}


def _catalog_resource(account: Account, kind: str = "portfolio") -> Resource:
    return Resource(CRN(account.name, "catalog", kind, "*"), "Catalog", _attrs(account))


def _shared_with(ctx: HandlerContext, portfolio: Portfolio) -> list[str]:
    targets = tuple(s.target for s in ctx.uow.catalog.list_shares(portfolio.account, portfolio.name))
    return reader_accounts(targets, ctx.uow.org.load_state)


def _resource(ctx: HandlerContext, account: Account, portfolio: Portfolio, crn: CRN | None = None,
              entity: str = "Portfolio", shared_with: list[str] | None = None) -> Resource:
    shared = _shared_with(ctx, portfolio) if shared_with is None else shared_with
    return Resource(crn or portfolio.crn, entity, {**_attrs(account), "portfolio": portfolio.name,
                                                   "shared_with": shared})


def _require_portfolio(ctx: HandlerContext, account: Account, name: str) -> Portfolio:
    portfolio = ctx.uow.catalog.get_portfolio(account.name, name)
    if portfolio is None:
        ctx.authorize(Action.LIST_PORTFOLIOS, _catalog_resource(account))
        raise NotFound(f"no portfolio {name!r} in {account.name}", portfolio=name)
    return portfolio


def _require_product(ctx: HandlerContext, account: Account, name: str) -> tuple[Product, Portfolio]:
    product = ctx.uow.catalog.get_product(account.name, name)
    if product is None:
        ctx.authorize(Action.LIST_PRODUCTS, _catalog_resource(account, "product"))
        raise NotFound(f"no product {name!r} in {account.name}", product=name)
    portfolio = ctx.uow.catalog.get_portfolio(account.name, product.portfolio)
    assert portfolio is not None  # a foreign key holds every product to its portfolio
    return product, portfolio


def _require_version(ctx: HandlerContext, account: Account, product: Product, portfolio: Portfolio,
                     version: int) -> ProductVersion:
    found = ctx.uow.catalog.get_version(account.name, product.name, version)
    if found is None:
        ctx.authorize(Action.LIST_PRODUCT_VERSIONS, _resource(ctx, account, portfolio, product.crn, "Product"))
        raise NotFound(f"no version {version} of {product.crn}", version=version)
    return found


# --- portfolios -------------------------------------------------------------------------------

def create_portfolio(cmd: c.CreatePortfolio, ctx: HandlerContext) -> Portfolio:
    account = ctx.account(cmd.account)
    portfolio = Portfolio(account.name, check_name(cmd.name, "portfolio"), cmd.description[:MAX_TEXT],
                          cmd.provider[:200])
    resource = _resource(ctx, account, portfolio, shared_with=[])
    ctx.authorize(Action.CREATE_PORTFOLIO, resource)
    if ctx.uow.catalog.get_portfolio(account.name, portfolio.name) is not None:
        raise Conflict(f"portfolio {portfolio.name} already exists in {account.name}", portfolio=portfolio.name)
    ctx.uow.catalog.add_portfolio(portfolio, ctx.clock.now(), ctx.identity.principal)
    ctx.audit(Action.CREATE_PORTFOLIO, resource, description=portfolio.description, provider=portfolio.provider)
    ctx.emit(Event(event_type("catalog", "portfolio", "created"), account.name, str(portfolio.crn),
                   {"portfolio": portfolio.name, "provider": portfolio.provider}))
    return portfolio


def list_portfolios(cmd: c.ListPortfolios, ctx: HandlerContext) -> Page[Portfolio]:
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_PORTFOLIOS, _catalog_resource(account))
    items = ctx.uow.catalog.list_portfolios(account.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda p: p.name)


def get_portfolio(cmd: c.GetPortfolio, ctx: HandlerContext) -> PortfolioDetail:
    account = ctx.account(cmd.account)
    portfolio = _require_portfolio(ctx, account, cmd.name)
    ctx.authorize(Action.READ_PORTFOLIO, _resource(ctx, account, portfolio))
    return PortfolioDetail(portfolio, tuple(ctx.uow.catalog.list_shares(account.name, portfolio.name)),
                           tuple(ctx.uow.catalog.list_grants(account.name, portfolio.name)))


# --- publishing -------------------------------------------------------------------------------

def unpack_archive(cmd: c.UnpackProductArchive, ctx: HandlerContext) -> UnpackedProduct:
    account = ctx.account(cmd.account)
    portfolio = _require_portfolio(ctx, account, cmd.portfolio)
    resource = _resource(ctx, account, portfolio)
    ctx.authorize(Action.PUBLISH_PRODUCT, resource)
    prefix = check_artifact_path(cmd.path.strip("/")) if cmd.path else None
    store = artifact_store(ctx)
    with archive.spool(cmd.chunks, cmd.max_bytes) as spooled, archive.open_archive(spooled) as tar:
        found = archive.members(tar, prefix)
        paths = [m.path for m in found]
        spec_member = next(m for m in found if m.path == PRODUCT_FILE)
        spec = load_product(archive.read_small(tar, spec_member, MAX_PRODUCT_FILE_BYTES), paths)
        # Only now, with every member and the product.yaml checked, is anything stored.
        files = []
        for member in found:
            info = store.put(account.name, archive.content(tar, member), max_bytes=MAX_FILE_BYTES)
            files.append(ProductFile(member.path, info.size, info.sha256))
    unpacked = UnpackedProduct(account.name, portfolio.name, spec, check_manifest(files))
    ctx.audit("catalog:UploadProductArchive", resource, product=spec.name, files=len(files),
              bytes=sum(f.size for f in files), content_digest=unpacked.content_digest)
    return unpacked


def _source(cmd: c.PublishProductVersion) -> Source:
    if cmd.repository is None and cmd.ref is None and cmd.commit is None:
        if cmd.path:
            raise ValidationError("a path inside the archive is given only with a git source", field="path")
        return Source(SourceKind.DIRECTORY)
    return Source(SourceKind.GIT, cmd.repository, cmd.ref, cmd.commit, cmd.path.strip("/") if cmd.path else None)


def publish_version(cmd: c.PublishProductVersion, ctx: HandlerContext) -> ProductVersion:
    account = ctx.account(cmd.account)
    portfolio = _require_portfolio(ctx, account, cmd.portfolio)
    ctx.authorize(Action.PUBLISH_PRODUCT, _resource(ctx, account, portfolio))
    source = _source(cmd)
    store = artifact_store(ctx)
    files = []
    for ref in cmd.files:
        check_artifact_path(ref.path)
        info = store.stat(account.name, ref.sha256)
        if info is None:
            raise ValidationError(f"file {ref.path} ({ref.sha256}) was not uploaded to {account.name}",
                                  field="files", path=ref.path)
        files.append(ProductFile(ref.path, info.size, info.sha256))
    manifest = check_manifest(files)
    spec_file = next(f for f in manifest if f.path == PRODUCT_FILE)
    if spec_file.size > MAX_PRODUCT_FILE_BYTES:
        raise ValidationError(f"{PRODUCT_FILE} is larger than {MAX_PRODUCT_FILE_BYTES} bytes", field="files")
    spec = load_product(b"".join(store.open(account.name, spec_file.sha256)), [f.path for f in manifest])
    catalog = ctx.uow.catalog
    product = catalog.get_product(account.name, spec.name)
    if product is None:
        product = Product(account.name, portfolio.name, spec.name, spec.kind, spec.description)
        catalog.add_product(product, ctx.clock.now(), ctx.identity.principal)
    elif product.portfolio != portfolio.name:
        raise Conflict(f"product {spec.name} belongs to portfolio {product.portfolio}, not {portfolio.name}",
                       product=spec.name, portfolio=product.portfolio)
    elif product.kind is not spec.kind:
        raise ValidationError(f"{PRODUCT_FILE}: kind: {spec.name} is a {product.kind}; a version cannot "
                              f"make it a {spec.kind}", field="kind")
    same = catalog.find_version_by_content(account.name, spec.name, content_digest(manifest))
    if same is not None:
        raise Conflict(f"these files are already published as {same.crn} (version {same.version})",
                       product=spec.name, version=same.version, crn=str(same.crn))
    number = catalog.allocate_version(account.name, spec.name, spec.description)
    version = ProductVersion(account.name, portfolio.name, spec.name, number, manifest, spec, source,
                             ctx.identity.principal, ctx.clock.now())
    catalog.add_version(version)
    resource = _resource(ctx, account, portfolio, version.crn, "ProductVersion")
    details = {"portfolio": portfolio.name, "product": spec.name, "version": number, "kind": str(spec.kind),
               "files": len(manifest), "content_digest": version.content_digest, "source": str(source.kind),
               "repository": source.repository, "ref": source.ref, "commit": source.commit}
    ctx.audit(Action.PUBLISH_PRODUCT, resource, **details)
    ctx.emit(Event(event_type("catalog", "product", "published"), account.name, str(version.crn),
                   {**details, "published_by": ctx.identity.principal}))
    return version


# --- reading ----------------------------------------------------------------------------------

def list_products(cmd: c.ListProducts, ctx: HandlerContext) -> Page[Product]:
    account = ctx.account(cmd.account)
    if cmd.portfolio is not None:
        portfolio = _require_portfolio(ctx, account, cmd.portfolio)
        ctx.authorize(Action.READ_PORTFOLIO, _resource(ctx, account, portfolio))
    else:
        ctx.authorize(Action.LIST_PRODUCTS, _catalog_resource(account, "product"))
    items = ctx.uow.catalog.list_products(account.name, cmd.portfolio, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda p: p.name)


def get_product(cmd: c.GetProduct, ctx: HandlerContext) -> Product:
    account = ctx.account(cmd.account)
    product, portfolio = _require_product(ctx, account, cmd.name)
    ctx.authorize(Action.READ_PRODUCT, _resource(ctx, account, portfolio, product.crn, "Product"))
    return product


def list_versions(cmd: c.ListProductVersions, ctx: HandlerContext) -> Page[ProductVersion]:
    account = ctx.account(cmd.account)
    product, portfolio = _require_product(ctx, account, cmd.product)
    ctx.authorize(Action.LIST_PRODUCT_VERSIONS, _resource(ctx, account, portfolio, product.crn, "Product"))
    try:
        after = int(cmd.page.after) if cmd.page.after else None
    except ValueError:
        raise ValidationError("invalid cursor", field="cursor") from None
    items = ctx.uow.catalog.list_versions(account.name, product.name, after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda v: str(v.version))


def get_version(cmd: c.GetProductVersion, ctx: HandlerContext) -> ProductVersion:
    account = ctx.account(cmd.account)
    product, portfolio = _require_product(ctx, account, cmd.product)
    version = _require_version(ctx, account, product, portfolio, cmd.version)
    ctx.authorize(Action.READ_PRODUCT_VERSION, _resource(ctx, account, portfolio, version.crn, "ProductVersion"))
    return version


def get_file(cmd: c.GetProductFile, ctx: HandlerContext) -> Download:
    account = ctx.account(cmd.account)
    product, portfolio = _require_product(ctx, account, cmd.product)
    version = _require_version(ctx, account, product, portfolio, cmd.version)
    ctx.authorize(Action.READ_PRODUCT_FILE, _resource(ctx, account, portfolio, version.crn, "ProductVersion"))
    file = version.file(check_artifact_path(cmd.path))
    if file is None:
        raise NotFound(f"{version.crn} has no file {cmd.path}", path=cmd.path)
    store = artifact_store(ctx)
    info = store.stat(account.name, file.sha256)
    if info is None:
        raise NotFound(f"the stored content of {cmd.path} is missing from {account.name}", path=cmd.path)
    return Download(info, store.open(account.name, file.sha256))


# --- shares and grants --------------------------------------------------------------------------

def _check_target(ctx: HandlerContext, account: Account, target: str) -> str:
    check_share_target(target)
    state = ctx.uow.org.load_state()
    known = state.units if target.startswith("ou:") else state.accounts
    if target.removeprefix("ou:") not in known:
        raise ValidationError(f"unknown share target {target!r}: name an account or ou:<unit>", field="target")
    # A share naming the portfolio's own account lets its members launch there too (ML engineers
    # in shared services launch the deployment template); an OU share never does (see ``imported``).
    return target


def share(cmd: c.SharePortfolio, ctx: HandlerContext) -> Share:
    account = ctx.account(cmd.account)
    portfolio = _require_portfolio(ctx, account, cmd.portfolio)
    resource = _resource(ctx, account, portfolio)
    ctx.authorize(Action.SHARE_PORTFOLIO, resource)
    new = Share(account.name, portfolio.name, _check_target(ctx, account, cmd.target))
    if new in ctx.uow.catalog.list_shares(account.name, portfolio.name):
        raise Conflict(f"{portfolio.crn} is already shared with {new.target}", target=new.target)
    ctx.uow.catalog.add_share(new)
    reached = _shared_with(ctx, portfolio)
    ctx.audit(Action.SHARE_PORTFOLIO, resource, target=new.target, accounts=reached)
    ctx.emit(Event(event_type("catalog", "portfolio", "shared"), account.name, str(portfolio.crn),
                   {"portfolio": portfolio.name, "target": new.target, "shared_with": reached}))
    return new


def unshare(cmd: c.UnsharePortfolio, ctx: HandlerContext) -> Share:
    account = ctx.account(cmd.account)
    portfolio = _require_portfolio(ctx, account, cmd.portfolio)
    resource = _resource(ctx, account, portfolio)
    ctx.authorize(Action.UNSHARE_PORTFOLIO, resource)
    old = Share(account.name, portfolio.name, check_share_target(cmd.target))
    if old not in ctx.uow.catalog.list_shares(account.name, portfolio.name):
        raise NotFound(f"{portfolio.crn} is not shared with {old.target}", target=old.target)
    ctx.uow.catalog.delete_share(old)
    reached = _shared_with(ctx, portfolio)
    ctx.audit(Action.UNSHARE_PORTFOLIO, resource, target=old.target, accounts=reached)
    ctx.emit(Event(event_type("catalog", "portfolio", "unshared"), account.name, str(portfolio.crn),
                   {"portfolio": portfolio.name, "target": old.target, "shared_with": reached}))
    return old


def grant(cmd: c.GrantPortfolio, ctx: HandlerContext) -> Grant:
    account = ctx.account(cmd.account)
    portfolio = _require_portfolio(ctx, account, cmd.portfolio)
    resource = _resource(ctx, account, portfolio)
    ctx.authorize(Action.GRANT_PORTFOLIO, resource)
    new = Grant(account.name, portfolio.name, check_grant_pattern(cmd.pattern))
    if new in ctx.uow.catalog.list_grants(account.name, portfolio.name):
        raise Conflict(f"{portfolio.crn} is already granted to {new.pattern}", pattern=new.pattern)
    ctx.uow.catalog.add_grant(new)
    ctx.audit(Action.GRANT_PORTFOLIO, resource, pattern=new.pattern)
    ctx.emit(Event(event_type("catalog", "portfolio", "granted"), account.name, str(portfolio.crn),
                   {"portfolio": portfolio.name, "pattern": new.pattern}))
    return new


def revoke_grant(cmd: c.RevokePortfolioGrant, ctx: HandlerContext) -> Grant:
    account = ctx.account(cmd.account)
    portfolio = _require_portfolio(ctx, account, cmd.portfolio)
    resource = _resource(ctx, account, portfolio)
    ctx.authorize(Action.REVOKE_PORTFOLIO_GRANT, resource)
    old = Grant(account.name, portfolio.name, check_grant_pattern(cmd.pattern))
    if old not in ctx.uow.catalog.list_grants(account.name, portfolio.name):
        raise NotFound(f"{portfolio.crn} is not granted to {old.pattern}", pattern=old.pattern)
    ctx.uow.catalog.delete_grant(old)
    ctx.audit(Action.REVOKE_PORTFOLIO_GRANT, resource, pattern=old.pattern)
    ctx.emit(Event(event_type("catalog", "portfolio", "grant-revoked"), account.name, str(portfolio.crn),
                   {"portfolio": portfolio.name, "pattern": old.pattern}))
    return old


def caller_roles(ctx: HandlerContext, account: Account) -> list[str]:
    """The roles the caller acts with in ``account`` (an assume-role session: its one role)."""
    return sorted(ctx.identity.scope_roles(
        account.name, ctx.uow.org.roles_of(ctx.identity.principal).get(account.name, set())))


def imported_by(ctx: HandlerContext, account: Account, product: str | None = None,
                state: OrgState | None = None) -> list[ImportedPortfolio]:
    """The portfolios shared with ``account`` (directly or through its OUs); with ``product``,
    each lists only the product of that name. A portfolio of the account's own counts only when it
    is shared with the account by name (an OU share is meant for the other accounts in it)."""
    ancestors = (state or ctx.uow.org.load_state()).ou_ancestors(account.ou)
    found = ctx.uow.catalog.imported(share_targets(account.name, ancestors), product)
    own = [i for i in found if i.portfolio.account == account.name]
    named = ({(i.portfolio.account, i.portfolio.name) for i in ctx.uow.catalog.imported([account.name], product)}
             if own else set())
    return [i for i in found if i.portfolio.account != account.name
            or (i.portfolio.account, i.portfolio.name) in named]


def imported(cmd: c.ListImportedPortfolios, ctx: HandlerContext) -> Imported:
    """A fixed number of statements, however many portfolios, shares and products there are: the
    decision, the organization (for the account's OU chain), then the repository's three."""
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_IMPORTED, _catalog_resource(account, "imported"))
    roles = caller_roles(ctx, account)
    return Imported(account.name, tuple(roles),
                    tuple(ImportedEntry(i, i.launchable(roles)) for i in imported_by(ctx, account)))


@dataclass(frozen=True, slots=True)
class Launchable:
    portfolio: Portfolio
    product: Product
    version: ProductVersion


def launchable_version(ctx: HandlerContext, account: Account, name: str, version: int | None,
                       kind: ProductKind, state: OrgState | None = None) -> Launchable:
    """The version of product ``name`` the caller may launch in ``account``: the product is in a
    portfolio shared with the account (or the account's own) and a grant of that portfolio matches
    one of the caller's roles there — what ``imported`` lists as launchable."""
    check_name(name, "product")
    roles = caller_roles(ctx, account)
    found = [(i, p) for i in imported_by(ctx, account, name, state) for p in i.products if p.name == name]
    own = ctx.uow.catalog.get_product(account.name, name)
    if own is not None and not any(p.account == account.name for _, p in found):
        portfolio = ctx.uow.catalog.get_portfolio(account.name, own.portfolio)
        assert portfolio is not None
        found.append((ImportedPortfolio(portfolio, tuple(ctx.uow.catalog.list_grants(account.name, portfolio.name)),
                                        (own,)), own))
    if not found:
        raise PermissionDenied(f"no portfolio shared with {account.name} holds a product {name!r}",
                               product=name, account=account.name, policy="portfolio-share")
    if len(found) > 1:
        raise ValidationError(f"{len(found)} portfolios shared with {account.name} hold a product {name!r}: "
                              + ", ".join(str(p.crn) for _, p in found), field="product")
    entry, product = found[0]
    if product not in entry.launchable(roles):
        grants = ", ".join(g.pattern for g in entry.grants) or "none"
        raise PermissionDenied(
            f"{entry.portfolio.crn} is not granted to your roles in {account.name} "
            f"({', '.join(roles) or 'none'}); it is granted to: {grants}",
            product=name, roles=roles, grants=[g.pattern for g in entry.grants], policy="portfolio-grant")
    if product.kind is not kind:
        raise ValidationError(f"{product.crn} is a {product.kind} product; launch it as a {product.kind}",
                              field="product", kind=str(product.kind))
    number = product.latest_version if version is None else version
    found_version = ctx.uow.catalog.get_version(product.account, product.name, number)
    if found_version is None:
        raise NotFound(f"no version {number} of {product.crn}", product=name, version=number)
    return Launchable(entry.portfolio, product, found_version)


HANDLERS: dict[type, Any] = {
    c.CreatePortfolio: create_portfolio,
    c.ListPortfolios: list_portfolios,
    c.GetPortfolio: get_portfolio,
    c.UnpackProductArchive: unpack_archive,
    c.PublishProductVersion: publish_version,
    c.ListProducts: list_products,
    c.GetProduct: get_product,
    c.ListProductVersions: list_versions,
    c.GetProductVersion: get_version,
    c.GetProductFile: get_file,
    c.SharePortfolio: share,
    c.UnsharePortfolio: unshare,
    c.GrantPortfolio: grant,
    c.RevokePortfolioGrant: revoke_grant,
    c.ListImportedPortfolios: imported,
}
