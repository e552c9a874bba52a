"""The template catalog of each account: portfolios, publishing, products, shares, grants, imports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep
from charter.entrypoints.api.routes.registry import _chunks

router = APIRouter(tags=["catalog"])
AccountName = Annotated[str, Path(max_length=63)]
Name = Annotated[str, Path(max_length=63)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
CATALOG = "/accounts/{account}/catalog"
PORTFOLIOS = CATALOG + "/portfolios"
PORTFOLIO = PORTFOLIOS + "/{portfolio}"
PRODUCTS = CATALOG + "/products"
VERSIONS = PRODUCTS + "/{product}/versions"


@router.post(PORTFOLIOS, response_model=m.PortfolioOut, status_code=201)
def create_portfolio(account: AccountName, body: m.PortfolioCreate, caller: CallerDep) -> m.PortfolioOut:
    return convert.portfolio(caller(c.CreatePortfolio(account, body.name, body.description, body.provider)))


@router.get(PORTFOLIOS, response_model=m.Page[m.PortfolioOut])
def list_portfolios(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.PortfolioOut]:
    return convert.page(caller(c.ListPortfolios(account, page)), convert.portfolio)


@router.get(PORTFOLIO, response_model=m.PortfolioDetail)
def get_portfolio(account: AccountName, portfolio: Name, caller: CallerDep) -> m.PortfolioDetail:
    return convert.portfolio_detail(caller(c.GetPortfolio(account, portfolio)))


@router.post(PORTFOLIO + "/publish", response_model=m.ProductVersionOut, status_code=201, openapi_extra={
    "requestBody": {"required": True, "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}}})
async def publish(
    account: AccountName, portfolio: Name, request: Request, caller: CallerDep,
    repository: Annotated[str | None, Query(max_length=2000, description="The git repository it came from.")] = None,
    ref: Annotated[str | None, Query(max_length=255, description="The ref the publisher named.")] = None,
    commit: Annotated[str | None, Query(max_length=64, description="The commit the ref resolved to.")] = None,
    path: Annotated[str | None, Query(max_length=512, description="The template's folder in the archive.")] = None,
) -> m.ProductVersionOut:
    """Publish a template: the body is a tar.gz of its folder (product.yaml at its root, or under
    ``path``). The archive is checked and stored before a short transaction records the version."""
    limit = request.app.state.platform.settings.max_artifact_bytes
    unpacked = await run_in_threadpool(caller, c.UnpackProductArchive(account, portfolio, _chunks(request),
                                                                      limit, path))
    files = tuple(c.ProductFileRef(f.path, f.sha256) for f in unpacked.files)
    version = await run_in_threadpool(caller, c.PublishProductVersion(account, portfolio, files, repository,
                                                                      ref, commit, path))
    return convert.product_version(version)


@router.post(PORTFOLIO + "/shares", response_model=m.ShareOut, status_code=201)
def share(account: AccountName, portfolio: Name, body: m.ShareIn, caller: CallerDep) -> m.ShareOut:
    return convert.share(caller(c.SharePortfolio(account, portfolio, body.target)))


@router.delete(PORTFOLIO + "/shares/{target}", response_model=m.ShareOut)
def unshare(account: AccountName, portfolio: Name, target: Annotated[str, Path(max_length=66)],
            caller: CallerDep) -> m.ShareOut:
    return convert.share(caller(c.UnsharePortfolio(account, portfolio, target)))


@router.post(PORTFOLIO + "/grants", response_model=m.PortfolioGrantOut, status_code=201)
def grant(account: AccountName, portfolio: Name, body: m.GrantIn, caller: CallerDep) -> m.PortfolioGrantOut:
    return convert.grant(caller(c.GrantPortfolio(account, portfolio, body.pattern)))


@router.delete(PORTFOLIO + "/grants/{pattern}", response_model=m.PortfolioGrantOut)
def revoke_grant(account: AccountName, portfolio: Name, pattern: Annotated[str, Path(max_length=63)],
                 caller: CallerDep) -> m.PortfolioGrantOut:
    return convert.grant(caller(c.RevokePortfolioGrant(account, portfolio, pattern)))


@router.get(PRODUCTS, response_model=m.Page[m.ProductOut])
def list_products(account: AccountName, caller: CallerDep, page: PageDep,
                  portfolio: Annotated[str | None, Query(max_length=63)] = None) -> m.Page[m.ProductOut]:
    return convert.page(caller(c.ListProducts(account, portfolio, page)), convert.product)


@router.get(PRODUCTS + "/{product}", response_model=m.ProductOut)
def get_product(account: AccountName, product: Name, caller: CallerDep) -> m.ProductOut:
    return convert.product(caller(c.GetProduct(account, product)))


@router.get(VERSIONS, response_model=m.Page[m.ProductVersionOut])
def list_versions(account: AccountName, product: Name, caller: CallerDep,
                  page: PageDep) -> m.Page[m.ProductVersionOut]:
    return convert.page(caller(c.ListProductVersions(account, product, page)), convert.product_version)


@router.get(VERSIONS + "/{version}", response_model=m.ProductVersionOut)
def get_version(account: AccountName, product: Name, version: Version, caller: CallerDep) -> m.ProductVersionOut:
    return convert.product_version(caller(c.GetProductVersion(account, product, version)))


@router.get(VERSIONS + "/{version}/files/{path:path}", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}})
def get_file(account: AccountName, product: Name, version: Version,
             path: Annotated[str, Path(max_length=512)], caller: CallerDep) -> StreamingResponse:
    download = caller(c.GetProductFile(account, product, version, path))
    return StreamingResponse(download.chunks, media_type="application/octet-stream", headers={
        "content-length": str(download.info.size), "etag": f'"{download.info.sha256}"'})


@router.get(CATALOG + "/imported", response_model=m.ImportedOut)
def imported(account: AccountName, caller: CallerDep) -> m.ImportedOut:
    """The portfolios shared with this account and, per portfolio, what the caller may launch."""
    return convert.imported(caller(c.ListImportedPortfolios(account)))
