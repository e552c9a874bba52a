"""Organization: the directory and ``charter apply``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from charter.client import models as m
from charter.domain import commands as c
from charter.entrypoints.api import convert
from charter.entrypoints.api.deps import CallerDep, PageDep

router = APIRouter(tags=["organization"])
AccountName = Annotated[str, Path(max_length=63)]


@router.get("/org", response_model=m.OrganizationOut)
def get_org(caller: CallerDep) -> m.OrganizationOut:
    view = caller(c.GetOrg())
    return m.OrganizationOut(
        name=view.org.name, crn=str(view.org.crn), created_at=view.org.created_at,
        policy_revision=view.org.policy_revision,
        units=[convert.unit(u) for _, u in sorted(view.state.units.items())],
        accounts=[convert.account(a) for _, a in sorted(view.state.accounts.items())],
    )


@router.post("/org/apply", response_model=m.ApplyOut)
def apply(body: m.ApplyRequest, caller: CallerDep) -> m.ApplyOut:
    message = (c.PlanOrg if body.plan else c.ApplyOrg)(body.document, body.filename)
    result = caller(message)
    return m.ApplyOut(applied=result.applied, changes=[convert.change(ch) for ch in result.changes])


@router.get("/accounts", response_model=m.Page[m.AccountOut])
def list_accounts(caller: CallerDep, page: PageDep) -> m.Page[m.AccountOut]:
    result = caller(c.ListAccounts(page))
    return convert.page(result, convert.account)


@router.get("/accounts/{account}", response_model=m.AccountOut)
def get_account(account: AccountName, caller: CallerDep) -> m.AccountOut:
    return convert.account(caller(c.GetAccount(account)))


@router.get("/accounts/{account}/role-bindings", response_model=list[m.RoleBindingOut])
def list_role_bindings(account: AccountName, caller: CallerDep) -> list[m.RoleBindingOut]:
    return [convert.binding(b) for b in caller(c.ListRoleBindings(account))]


@router.get("/principals", response_model=m.Page[m.PrincipalOut])
def list_principals(caller: CallerDep, page: PageDep) -> m.Page[m.PrincipalOut]:
    result = caller(c.ListPrincipals(page))
    return convert.page(result, convert.principal)


@router.get("/principals/{name}", response_model=m.PrincipalDetail)
def get_principal(name: Annotated[str, Path(max_length=63)], caller: CallerDep) -> m.PrincipalDetail:
    principal, roles = caller(c.GetPrincipal(name))
    return m.PrincipalDetail(**convert.principal(principal).model_dump(), bindings=convert.bindings(roles))


@router.get("/policies", response_model=m.PoliciesOut)
def list_policies(caller: CallerDep) -> m.PoliciesOut:
    view = caller(c.ListPolicies())
    return m.PoliciesOut(
        policies=[convert.policy(p, "default") for p in view.defaults]
        + [convert.policy(p, "organization") for p in view.organization],
        roles=[convert.role(r) for r in view.roles],
    )
