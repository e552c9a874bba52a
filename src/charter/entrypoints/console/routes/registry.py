"""The model registry: groups, packages with their metrics side by side, a package's history and
decision, and its lineage from the dataset version to the central package."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from charter.client import models as m
from charter.domain import commands as c
from charter.domain.authz import Action
from charter.entrypoints.api import convert
from charter.entrypoints.console import views
from charter.entrypoints.console.routes import decisions
from charter.entrypoints.console.svg import Node, draw
from charter.entrypoints.console.web import Console, ConsoleRoute
from charter.errors import CharterError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Name = Annotated[str, Path(max_length=63)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/accounts/{account}/registry")
def groups(account: Name, console: ConsoleDep) -> Response:
    rows = []
    for group in views.groups(console, account):
        pkgs = views.packages(console, account, group.name)
        rows.append((group, pkgs))
    return console.render("registry.html", account=account, rows=rows)


@router.get("/accounts/{account}/registry/{group}")
def group(account: Name, group: Name, console: ConsoleDep,
          compare: Annotated[list[int] | None, Query(max_length=12)] = None) -> Response:
    found = convert.group(console(c.GetModelPackageGroup(account, group)))
    pkgs = views.packages(console, account, group)
    chosen = [p for p in pkgs if p.version in set(compare)] if compare else pkgs[-6:]
    return console.render("group.html", account=account, group=found, packages=pkgs, compared=chosen)


def _audit(console: Console, crn: str) -> list[m.AuditRecordOut] | None:
    try:
        page = console(c.ListAudit(c.AuditFilter(resource=crn), c.PageRequest(None, 100)))
    except CharterError:
        return None  # the caller may not read the trail: the page shows the package's own history
    return [convert.record(r) for r in page.items]


def render_package(console: Console, errors: dict[str, dict[str, str]] | None = None, status: int = 200,
                   *, account: str, group: str, version: int, **_: Any) -> Response:
    pkg = views.package(console, account, group, version)
    approve, reject = console.can(c.Ability(str(Action.APPROVE_PACKAGE), account, group, str(version)),
                                  c.Ability(str(Action.REJECT_PACKAGE), account, group, str(version)))
    return console.render("package.html", status=status, account=account, pkg=pkg, approve=approve,
                          reject=reject, errors=errors or {}, audit=_audit(console, pkg.crn),
                          key=f"package-{account}-{group}-{version}")


decisions.PAGES["package"] = render_package


@router.get("/accounts/{account}/registry/{group}/{version}")
def package(account: Name, group: Name, version: Version, console: ConsoleDep) -> Response:
    return render_package(console, account=account, group=group, version=version)


def _source(crn: str) -> tuple[str, str, int] | None:
    """(account, group, version) of a package CRN ``crn:charter:ACC:registry:model-package/G/V``."""
    parts = crn.split(":")
    if len(parts) != 5 or parts[3] != "registry":
        return None
    path = parts[4].split("/")
    if len(path) != 3 or path[0] != "model-package" or not path[2].isdigit():
        return None
    return parts[2], path[1], int(path[2])


def package_of(console: Console, crn: str) -> m.PackageOut | None:
    """The package a CRN names (None when it names none)."""
    where = _source(crn)
    return views.package(console, *where) if where is not None else None


def _central_copies(console: Console, pkg: m.PackageOut) -> list[m.PackageOut]:
    """The packages promoted from ``pkg``: in shared-services accounts, group ``<group>-<account>``."""
    out: list[m.PackageOut] = []
    for name, kind in views.account_kinds(console).items():
        if kind != "shared-services":
            continue
        try:
            out.extend(p for p in views.packages(console, name, f"{pkg.group}-{pkg.account}")
                       if p.origin == pkg.crn)
        except CharterError:
            continue
    return out


def _serving(console: Console, packages: list[m.PackageOut]) -> list[tuple[m.PackageOut, m.EndpointOut]]:
    """The endpoints (of the accounts the caller may read) whose serving revision serves one of
    ``packages``."""
    wanted = {p.crn: p for p in packages}
    out = []
    for name in views.account_kinds(console):
        try:
            found = views.endpoints(console, name)
        except CharterError:
            continue
        for endpoint in found:
            serving = next((r for r in endpoint.revisions if r.revision == endpoint.serving_revision), None)
            for variant in serving.variants if serving else []:
                if variant.package in wanted:
                    out.append((wanted[variant.package], endpoint))
    return out


def _package_node(p: m.PackageOut) -> Node:
    return Node(p.crn, f"{p.group}/{p.version}", f"{p.account} · {p.status}", p.status,
                f"/accounts/{p.account}/registry/{p.group}/{p.version}")


@router.get("/accounts/{account}/registry/{group}/{version}/lineage")
def lineage(account: Name, group: Name, version: Version, console: ConsoleDep) -> Response:
    pkg = views.package(console, account, group, version)
    source, central = pkg, [pkg]
    if pkg.origin and (where := _source(pkg.origin)) is not None:
        try:
            source = views.package(console, *where)
        except CharterError:
            source = pkg  # the source account is not readable by this caller
    if source is not pkg or not pkg.origin:
        central = _central_copies(console, source) if source is pkg else [pkg]
    data_nodes = [Node(d, d.split(":")[-1].removeprefix("dataset-version/").removeprefix("dataset/"),
                       d.split(":")[2] if d.count(":") >= 2 else "", "dataset") for d in source.lineage.datasets]
    run = source.lineage.run
    run_id = run.rsplit("/", 1)[-1] if run else None
    layers: list[list[Node]] = []
    edges: list[tuple[str, str]] = []
    src_node = _package_node(source)
    if data_nodes:
        layers.append(data_nodes)
    if run_id:
        run_node = Node("run", f"run {run_id[:12]}", f"by {source.lineage.run_started_by or '?'}", "run",
                        f"/accounts/{source.account}/runs/{run_id}")
        layers.append([run_node])
        edges += [(d.id, "run") for d in data_nodes] + [("run", src_node.id)]
    else:
        edges += [(d.id, src_node.id) for d in data_nodes]
    layers.append([src_node])
    copies = [p for p in central if p.crn != source.crn]
    if copies:
        layers.append([_package_node(p) for p in copies])
        edges += [(src_node.id, p.crn) for p in copies]
    served = _serving(console, copies or [source])
    if served:
        layers.append([Node(f"endpoint:{e.account}/{e.name}", e.name,
                            f"{e.account} r{e.serving_revision} {e.status}", "endpoint",
                            f"/accounts/{e.account}/endpoints/{e.name}") for _, e in served])
        edges += [(p.crn, f"endpoint:{e.account}/{e.name}") for p, e in served]
    picture = draw(layers, edges, f"Lineage of {group}/{version}")
    return console.render("lineage.html", account=account, pkg=pkg, source=source, picture=picture)
