"""The template catalog and projects: portfolios, products and versions, shares and grants, the
portfolios imported by an account, and launching a project from a form made from its schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from charter.domain import commands as c
from charter.domain.authz import Action
from charter.entrypoints.api import convert
from charter.entrypoints.console import forms, views
from charter.entrypoints.console.web import Console, ConsoleRoute, problem
from charter.errors import CharterError, ValidationError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Name = Annotated[str, Path(max_length=63)]


@router.get("/accounts/{account}/catalog")
def catalog(account: Name, console: ConsoleDep) -> Response:
    try:
        own = [convert.portfolio_detail(console(c.GetPortfolio(account, p.name)))
               for p in views.all_pages(console, lambda pg: c.ListPortfolios(account, pg), lambda x: x)]
    except CharterError:
        own = []
    try:
        imported = convert.imported(console(c.ListImportedPortfolios(account)))
    except CharterError:
        imported = None
    products = {}
    for detail in own:
        products[detail.name] = views.all_pages(
            console, lambda pg, name=detail.name: c.ListProducts(account, name, pg), convert.product)
    may_launch = console.allowed(str(Action.LAUNCH_PRODUCT), account)
    return console.render("catalog.html", account=account, own=own, products=products, imported=imported,
                          may_launch=may_launch)


@router.get("/accounts/{account}/catalog/products/{product}")
def product(account: Name, product: Name, console: ConsoleDep) -> Response:
    found = convert.product(console(c.GetProduct(account, product)))
    versions = views.all_pages(console, lambda pg: c.ListProductVersions(account, product, pg),
                               convert.product_version)
    return console.render("product.html", account=account, product=found, versions=versions)


@router.get("/accounts/{account}/projects")
def projects(account: Name, console: ConsoleDep) -> Response:
    found = views.all_pages(console, lambda pg: c.ListProjects(account, pg), convert.project)
    return console.render("projects.html", account=account, projects=found)


@router.get("/accounts/{account}/projects/{name}")
def project(account: Name, name: Name, console: ConsoleDep) -> Response:
    return console.render("project.html", account=account, project=convert.project(console(c.GetProject(account, name))))


def _launchable(console: Console, account: str, product: str) -> Any:
    imported = convert.imported(console(c.ListImportedPortfolios(account)))
    for entry in imported.portfolios:
        for candidate in entry.launchable:
            if candidate.name == product:
                return candidate
    raise ValidationError(f"{product!r} is not a product your roles may launch in {account}", field="product")


def render_launch(console: Console, account: str, product: str, errors: dict[str, str] | None = None,
                  status: int = 200) -> Response:
    found = _launchable(console, account, product)
    version = convert.product_version(console(c.GetProductVersion(found.account, found.name, found.latest_version)))
    return console.render("launch.html", status=status, account=account, product=found, version=version,
                          fields=forms.fields(version.parameters), errors=errors or {},
                          value=lambda name, default="": console.field(name, default) if console.form else default)


@router.get("/accounts/{account}/projects/new/{product}")
def launch_form(account: Name, product: Name, console: ConsoleDep) -> Response:
    return render_launch(console, account, product)


@router.post("/accounts/{account}/projects/new/{product}")
def launch(account: Name, product: Name, console: ConsoleDep,
           version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    try:
        found = _launchable(console, account, product)
        schema = convert.product_version(console(c.GetProductVersion(found.account, found.name,
                                                                      found.latest_version))).parameters
        given = {f.name: console.field(f"param.{f.name}") for f in forms.fields(schema)}
        name = console.field("name").strip()
        if not name:
            raise ValidationError("name the project", field="name")
        result = console(c.CreateProject(account, name, product, forms.values(forms.fields(schema), given),
                                         found.latest_version))
    except CharterError as error:
        errors = problem(error)
        return render_launch(console, account, product, {f"param.{k}" if k not in ("name", "", "product") else k: v
                                                         for k, v in errors.items()}, error.status)
    return console.redirect(f"/accounts/{account}/projects/{result.project.name}",
                            f"Launched project {result.project.name} from {product}")
