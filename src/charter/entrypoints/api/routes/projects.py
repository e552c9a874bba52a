"""Projects and workspaces of each account: launched from catalog products, updated, terminated."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep

router = APIRouter(tags=["projects"])
AccountName = Annotated[str, Path(max_length=63)]
Name = Annotated[str, Path(max_length=63)]
PROJECTS = "/accounts/{account}/projects"
WORKSPACES = "/accounts/{account}/workspaces"


@router.post(PROJECTS, response_model=m.ProjectOut, status_code=201)
def create_project(account: AccountName, body: m.ProjectCreate, caller: CallerDep) -> m.ProjectOut:
    """Launch a product: the project and everything its version provisions, in one transaction."""
    return convert.project_result(caller(c.CreateProject(account, body.name, body.product, body.parameters,
                                                         body.version, body.workspace)))


@router.get(PROJECTS, response_model=m.Page[m.ProjectOut])
def list_projects(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.ProjectOut]:
    return convert.page(caller(c.ListProjects(account, page)), convert.project)


@router.get(PROJECTS + "/{name}", response_model=m.ProjectOut)
def get_project(account: AccountName, name: Name, caller: CallerDep) -> m.ProjectOut:
    return convert.project(caller(c.GetProject(account, name)))


@router.post(PROJECTS + "/{name}/update", response_model=m.ProjectOut)
def update_project(account: AccountName, name: Name, body: m.ProjectUpdateIn, caller: CallerDep) -> m.ProjectOut:
    """Move the project to another version of its product (groups are kept, and said so in notes)."""
    return convert.project_result(caller(c.UpdateProject(account, name, body.parameters, body.version)))


@router.post(PROJECTS + "/{name}/terminate", response_model=m.ProjectOut)
def terminate_project(account: AccountName, name: Name, caller: CallerDep) -> m.ProjectOut:
    """Remove the project's rules and mark it Terminated; its model package groups stay."""
    return convert.project_result(caller(c.TerminateProject(account, name)))


@router.post(WORKSPACES, response_model=m.WorkspaceOut, status_code=201)
def create_workspace(account: AccountName, body: m.WorkspaceCreate, caller: CallerDep) -> m.WorkspaceOut:
    return convert.workspace(caller(c.CreateWorkspace(account, body.name, body.product, body.parameters,
                                                      body.version)))


@router.get(WORKSPACES, response_model=m.Page[m.WorkspaceOut])
def list_workspaces(account: AccountName, caller: CallerDep, page: PageDep) -> m.Page[m.WorkspaceOut]:
    return convert.page(caller(c.ListWorkspaces(account, page)), convert.workspace)


@router.get(WORKSPACES + "/{name}", response_model=m.WorkspaceOut)
def get_workspace(account: AccountName, name: Name, caller: CallerDep) -> m.WorkspaceOut:
    return convert.workspace(caller(c.GetWorkspace(account, name)))


@router.post(WORKSPACES + "/{name}/terminate", response_model=m.WorkspaceOut)
def terminate_workspace(account: AccountName, name: Name, caller: CallerDep) -> m.WorkspaceOut:
    """Remove the members' role bindings the workspace made and mark it Terminated."""
    return convert.workspace(caller(c.TerminateWorkspace(account, name)))
