"""The REST contract: request and response bodies, shared by the API (which emits them) and the
SDK (which parses them). Responses ignore unknown fields so older clients keep working."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(Model, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last.")


class ErrorDetail(Model):
    type: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(Model):
    error: ErrorDetail


class OrgUnitOut(Model):
    name: str
    parent: str | None
    description: str
    crn: str


class AccountOut(Model):
    name: str
    kind: str
    stage: str | None
    ou: str | None
    description: str
    crn: str


class PrincipalOut(Model):
    name: str
    kind: str
    display_name: str
    email: str
    crn: str


class PrincipalDetail(PrincipalOut):
    bindings: dict[str, list[str]] = Field(description="Roles held, by account.")


class RoleBindingOut(Model):
    principal: str
    account: str
    role: str
    crn: str


class RoleOut(Model):
    name: str
    description: str
    builtin: bool


class PolicyOut(Model):
    id: str
    description: str
    text: str
    source: Literal["default", "organization"]


class PoliciesOut(Model):
    policies: list[PolicyOut]
    roles: list[RoleOut]


class OrganizationOut(Model):
    name: str
    crn: str
    created_at: datetime
    policy_revision: int
    units: list[OrgUnitOut]
    accounts: list[AccountOut]


class ApplyRequest(Request):
    document: str = Field(max_length=1024 * 1024, description="The charter.yaml text.")
    filename: str = Field("charter.yaml", max_length=255, description="Named in error messages.")
    plan: bool = Field(False, description="Only compute the changes; apply nothing.")


class ChangeOut(Model):
    kind: str
    action: Literal["create", "update", "delete"]
    name: str
    summary: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ApplyOut(Model):
    applied: bool
    changes: list[ChangeOut]


class TokenCreate(Request):
    principal: str = Field(max_length=63)
    expires_in_seconds: int | None = Field(None, ge=1, le=10 * 365 * 86400)
    description: str = Field("", max_length=500)


class TokenOut(Model):
    id: str
    principal: str
    description: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    state: Literal["active", "expired", "revoked"]
    crn: str


class TokenIssued(Model):
    token: TokenOut
    secret: str = Field(description="The bearer token. Shown once; only its hash is kept.")


class SessionCreate(Request):
    account: str = Field(max_length=63)
    role: str = Field(max_length=63)
    duration_seconds: int | None = Field(None, ge=1, le=7 * 86400)


class SessionOut(Model):
    id: str
    principal: str
    account: str
    role: str
    created_at: datetime
    expires_at: datetime
    crn: str


class SessionIssued(Model):
    session: SessionOut
    secret: str = Field(description="The session's bearer token, scoped to one account and role.")


class WhoAmIOut(Model):
    principal: PrincipalOut
    via: str
    session: SessionOut | None
    bindings: dict[str, list[str]]


class AuditRecordOut(Model):
    seq: int
    id: str
    time: datetime
    actor: str | None
    via: str | None
    account: str
    action: str
    resource: str
    outcome: Literal["allowed", "denied", "failed"]
    policy: str | None
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class VerifyOut(Model):
    ok: bool
    records: int
    checkpoints: int
    first_bad_seq: int | None
    reason: str | None


class Health(Model):
    status: Literal["ok"]
    version: str
