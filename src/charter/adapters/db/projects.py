"""Projects and workspaces as a repository: one row each, what they provisioned kept as JSON."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, insert, select, update

from charter.adapters.db import tables as t
from charter.domain.projects import (
    LaunchStatus,
    Project,
    ProjectUpdate,
    ProvisionedResource,
    Workspace,
    WorkspaceMember,
)

pj, ws = t.catalog_projects.c, t.catalog_workspaces.c
_PROJECT = select(t.catalog_projects).where(and_(pj.account == bindparam("a"), pj.name == bindparam("n")))
_WORKSPACE = select(t.catalog_workspaces).where(and_(ws.account == bindparam("a"), ws.name == bindparam("n")))


def _project(row: Row[Any]) -> Project:
    return Project(
        account=row.account, name=row.name, product_account=row.product_account, product=row.product,
        version=row.version, parameters=dict(row.parameters), launched_by=row.launched_by,
        created_at=row.created_at, updated_at=row.updated_at, workspace=row.workspace,
        status=LaunchStatus(row.status),
        resources=tuple(ProvisionedResource.from_document(d) for d in row.resources),
        history=tuple(ProjectUpdate.from_document(d) for d in row.history))


def _project_values(p: Project) -> dict[str, Any]:
    return {"version": p.version, "parameters": p.parameters, "workspace": p.workspace,
            "status": str(p.status), "resources": [r.to_document() for r in p.resources],
            "history": [h.to_document() for h in p.history], "updated_at": p.updated_at}


def _workspace(row: Row[Any]) -> Workspace:
    return Workspace(
        account=row.account, name=row.name, team=row.team, product_account=row.product_account,
        product=row.product, version=row.version, parameters=dict(row.parameters),
        launched_by=row.launched_by, created_at=row.created_at, updated_at=row.updated_at,
        members=tuple(WorkspaceMember(m["principal"], m["role"], bool(m["bound"])) for m in row.members),
        cost_centre=row.cost_centre, business_unit=row.business_unit, environment=row.environment,
        tags=tuple((str(k), str(v)) for k, v in row.tags), data_access=tuple(row.data_access),
        status=LaunchStatus(row.status))


def _workspace_values(w: Workspace) -> dict[str, Any]:
    return {"team": w.team, "version": w.version, "parameters": w.parameters,
            "members": [{"principal": m.principal, "role": m.role, "bound": m.bound} for m in w.members],
            "cost_centre": w.cost_centre, "business_unit": w.business_unit, "environment": w.environment,
            "tags": [list(pair) for pair in w.tags], "data_access": list(w.data_access),
            "status": str(w.status), "updated_at": w.updated_at}


class SqlProjectRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get_project(self, account: str, name: str) -> Project | None:
        row = self.conn.execute(_PROJECT, {"a": account, "n": name}).first()
        return _project(row) if row else None

    def add_project(self, project: Project) -> None:
        self.conn.execute(insert(t.catalog_projects).values(
            account=project.account, name=project.name, product_account=project.product_account,
            product=project.product, launched_by=project.launched_by, created_at=project.created_at,
            **_project_values(project)))

    def save_project(self, project: Project) -> None:
        self.conn.execute(update(t.catalog_projects).where(
            and_(pj.account == project.account, pj.name == project.name)).values(**_project_values(project)))

    def list_projects(self, account: str, after: str | None, limit: int) -> list[Project]:
        q = select(t.catalog_projects).where(pj.account == account).order_by(pj.name).limit(limit)
        if after is not None:
            q = q.where(pj.name > after)
        return [_project(r) for r in self.conn.execute(q)]

    def get_workspace(self, account: str, name: str) -> Workspace | None:
        row = self.conn.execute(_WORKSPACE, {"a": account, "n": name}).first()
        return _workspace(row) if row else None

    def add_workspace(self, workspace: Workspace) -> None:
        self.conn.execute(insert(t.catalog_workspaces).values(
            account=workspace.account, name=workspace.name, product_account=workspace.product_account,
            product=workspace.product, launched_by=workspace.launched_by, created_at=workspace.created_at,
            **_workspace_values(workspace)))

    def save_workspace(self, workspace: Workspace) -> None:
        self.conn.execute(update(t.catalog_workspaces).where(
            and_(ws.account == workspace.account, ws.name == workspace.name)).values(**_workspace_values(workspace)))

    def list_workspaces(self, account: str, after: str | None, limit: int) -> list[Workspace]:
        q = select(t.catalog_workspaces).where(ws.account == account).order_by(ws.name).limit(limit)
        if after is not None:
            q = q.where(ws.name > after)
        return [_workspace(r) for r in self.conn.execute(q)]
